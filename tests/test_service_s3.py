"""The whole service with `storage.url: s3://bucket/prefix` (moto's S3 in server mode): a
camera's FTP upload goes through the bucket to the e-mail and the dashboard (on one node, and
from an ingest node to a worker node sharing PostgreSQL), retention deletes snapshot objects,
and an S3 outage at ingest refuses the upload instead of acknowledging and losing it."""

from __future__ import annotations

import ftplib
import io
import logging
import threading
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from harness.aws import REGION, Moto, label
from harness.proxy import OutageProxy
from harness.service import DATA, RunningService, upload, wait_until
from ipcam_analysis.imaging import THUMBNAIL_WIDTH

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 98.7, boxes=((0.25, 0.2, 0.2, 0.6),))
BUCKET = "camera-pictures"
CAMERA_PATH = "2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg"


@pytest.fixture
def s3(aws: Moto, monkeypatch: pytest.MonkeyPatch) -> object:
    # These tests name their own bucket: the suite's shared backend must not override it.
    monkeypatch.delenv("IPCAM_STORAGE_URL", raising=False)
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def keys_in(s3: object, prefix: str) -> list[str]:
    answer = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return sorted(item["Key"] for item in answer.get("Contents", []))


def object_bytes(s3: object, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]


def picture_url(service: RunningService, event_id: int, thumbnail: bool = False) -> str:
    assert service.service.web is not None
    return f"{service.service.web.url.rstrip('/')}/snapshots/{event_id}{'_thumb' if thumbnail else ''}.jpg"


def event_ids(service: RunningService) -> list[int]:
    return [row[0] for row in service.service.database.query("SELECT id FROM events ORDER BY id")]


def attached_picture(aws: Moto) -> bytes:
    (message,) = aws.sent_emails()
    part = next(p for p in message.iter_attachments() if p.get_content_type() == "image/jpeg")
    return part.get_content()


@pytest.mark.parametrize("worker_processes", [1, 2])
def test_an_upload_goes_through_the_bucket_to_the_email_and_the_dashboard(
    run_service, aws: Moto, s3: object, tmp_path: Path, worker_processes: int
) -> None:
    release = threading.Event()  # the cloud answers once the bucket was looked at

    def held_cloud(image: bytes) -> list[dict[str, object]]:
        release.wait(60)
        return [PERSON]

    aws.rekognition.answer = held_cloud
    service = run_service(
        storage={"url": f"s3://{BUCKET}/site-a"}, worker_processes=worker_processes
    )
    upload(service.address, "cam01", PERSON_JPEG, CAMERA_PATH)
    # Acknowledged once in the bucket and queued; the received file and its folders are gone.
    (in_flight,) = keys_in(s3, "site-a/uploads/")
    assert in_flight.endswith("/45[M][0@0][0].jpg")
    assert object_bytes(s3, in_flight) == PERSON_JPEG
    assert not any((tmp_path / "ftp" / "cam01").iterdir())
    wait_until(lambda: aws.rekognition.calls == 1, what="the worker to read the bucket")
    assert aws.rekognition.requests[0]["image"] == PERSON_JPEG
    release.set()
    service.wait_idle()

    assert service.outcomes() == [(CAMERA_PATH, "alert")]
    assert len(attached_picture(aws)) > 0
    (first,) = event_ids(service)
    day_keys = keys_in(s3, "site-a/snapshots/")
    assert [key.rsplit("/", 1)[1] for key in day_keys] == [f"{first}.jpg"]
    assert object_bytes(s3, day_keys[0]) == PERSON_JPEG
    wait_until(lambda: not keys_in(s3, "site-a/uploads/"), what="the upload object deleted")
    assert not (tmp_path / "data" / "snapshots").exists()  # nothing kept on this machine

    picture = httpx.get(picture_url(service, first), timeout=30)
    assert picture.status_code == 200 and picture.content == PERSON_JPEG
    small = httpx.get(picture_url(service, first, thumbnail=True), timeout=30)
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    # Drawn from the bucket's picture when shown, and kept nowhere.
    assert Image.open(io.BytesIO(small.content)).width == THUMBNAIL_WIDTH
    assert [key.rsplit("/", 1)[1] for key in keys_in(s3, "site-a/snapshots/")] == [f"{first}.jpg"]


def test_retention_deletes_snapshot_objects(run_service, aws: Moto, s3: object) -> None:
    aws.rekognition.labels = [PERSON]
    one_event_mb = len(PERSON_JPEG) * 1.5 / 1024 / 1024  # one picture fits, not two
    service = run_service(
        storage={"url": f"s3://{BUCKET}/site-a"}, history={"max_snapshots_mb": one_event_mb}
    )
    upload(service.address, "cam01", PERSON_JPEG, "first.jpg")
    service.wait_idle()
    (first,) = event_ids(service)
    assert httpx.get(picture_url(service, first), timeout=30).content == PERSON_JPEG
    # A second picture goes beyond max_snapshots_mb: the first one's objects are deleted.
    upload(service.address, "cam01", PERSON_JPEG, "second.jpg")
    service.wait_idle()
    first_gone, second = event_ids(service)

    def kept() -> list[str]:
        return [key.rsplit("/", 1)[1] for key in keys_in(s3, "site-a/snapshots/")]

    # Retention runs once the event is committed, with its queue row: it may still be deleting.
    wait_until(lambda: kept() == [f"{second}.jpg"], what="only the second picture kept")
    assert httpx.get(picture_url(service, first_gone), timeout=30).status_code == 404
    assert httpx.get(picture_url(service, second), timeout=30).content == PERSON_JPEG


def test_an_s3_outage_at_ingest_refuses_the_upload_until_it_is_back(
    run_service, aws: Moto, s3: object, tmp_path: Path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ipcam_analysis")
    aws.rekognition.labels = [PERSON]
    host, port = aws.endpoint.removeprefix("http://").split(":")
    proxy = OutageProxy((host, int(port)))  # S3 only: the cloud and SES stay reachable
    proxy.cut()
    monkeypatch.setenv("IPCAM_STORAGE_URL", f"s3://{BUCKET}/site-b")
    service = run_service(storage={"endpoint_url": proxy.url})

    with pytest.raises(ftplib.error_temp, match=r"^451"):
        upload(service.address, "cam01", PERSON_JPEG, "during-outage.jpg")
    assert service.service.database.query("SELECT id FROM uploads") == []
    assert not any((tmp_path / "ftp" / "cam01").iterdir())  # the camera still has it
    (refused,) = [r.getMessage() for r in caplog.records if "Could not queue" in r.getMessage()]
    assert refused.startswith("Could not queue the upload from cam01 (127.0.0.1): during-outage")
    assert f"s3://{BUCKET}/site-b/ at {proxy.url}: cannot write uploads/" in refused
    assert "(cannot be reached)" in refused
    assert aws.rekognition.calls == 0 and aws.sent_emails() == []

    proxy.restore()
    upload(service.address, "cam01", PERSON_JPEG, "during-outage.jpg")  # the camera's retry
    service.wait_idle()
    assert service.outcomes() == [("during-outage.jpg", "alert")]
    assert len(attached_picture(aws)) > 0
    assert len(keys_in(s3, "site-b/snapshots/")) == 1  # its picture
    wait_until(lambda: not keys_in(s3, "site-b/uploads/"), what="the upload object deleted")


@pytest.mark.shared_only
def test_a_worker_on_another_node_reads_the_upload_from_the_bucket(
    run_service, aws: Moto, s3: object, tmp_path: Path
) -> None:
    """Two nodes sharing PostgreSQL (IPCAM_DATABASE_URL) and the bucket, nothing else: one
    receives, one analyses."""
    aws.rekognition.labels = [PERSON]

    def node(name: str, roles: tuple[str, ...]) -> RunningService:
        return run_service(
            roles=roles,
            node_name=name,
            data_dir=str(tmp_path / name / "data"),
            ftp_server={"root_dir": str(tmp_path / name / "ftp")},
            storage={"url": f"s3://{BUCKET}/farm"},
        )

    worker = node("barn-worker", ("worker", "web"))
    ingest = node("barn-ingest", ("ingest", "web"))
    upload(ingest.address, "cam01", PERSON_JPEG, CAMERA_PATH)
    # Gone from the receiving node before the camera's 226: the worker can only read the bucket.
    assert not any((tmp_path / "barn-ingest" / "ftp" / "cam01").iterdir())
    worker.wait_idle()

    assert worker.outcomes() == [(CAMERA_PATH, "alert")]
    assert len(attached_picture(aws)) > 0
    (event,) = event_ids(worker)
    assert [key.rsplit("/", 1)[1] for key in keys_in(s3, "farm/snapshots/")] == [f"{event}.jpg"]
    wait_until(lambda: not keys_in(s3, "farm/uploads/"), what="the upload object deleted")
    # Neither node keeps a picture of its own; each one's dashboard shows it.
    for name in ("barn-ingest", "barn-worker"):
        assert not (tmp_path / name / "data" / "snapshots").exists()
    for running in (ingest, worker):
        picture = httpx.get(picture_url(running, event), timeout=30)
        assert picture.status_code == 200 and picture.content == PERSON_JPEG
