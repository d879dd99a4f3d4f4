"""Where pictures are kept: `storage.url` in the config, and files or an S3 bucket (moto's S3
in server mode) behind the one interface the store uses."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from harness.aws import REGION, Moto
from harness.proxy import OutageProxy
from harness.service import free_port
from ipcam_analysis.config import load_config
from ipcam_analysis.errors import UserError
from ipcam_analysis.store import LocalStorage, StorageError, StorageSettings, open_storage
from ipcam_analysis.store.storage import S3Storage
from tests.test_config import error_of, write

BUCKET = "camera-pictures"


def config_with(tmp_path: Path, storage: str) -> Path:
    return write(tmp_path, f"detector: {{type: local}}\nstorage:\n{storage}")


def config_error(tmp_path: Path, storage: str) -> str:
    return error_of(tmp_path, f"detector: {{type: local}}\nstorage:\n{storage}")


def test_storage_settings_and_their_one_line_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IPCAM_STORAGE_URL", raising=False)
    default = load_config(config_with(tmp_path, "  {}\n"))
    assert default.storage.url is None
    assert isinstance(open_storage(default.storage_settings(), tmp_path), LocalStorage)
    config = load_config(
        config_with(tmp_path, "  url: s3://pictures/site-a\n  endpoint_url: http://minio:9000\n")
    )
    assert config.storage.url == "s3://pictures/site-a"
    assert config.masked_dump()["storage"]["endpoint_url"] == "http://minio:9000"
    assert "storage.url: 'gs://pictures/x' is not s3://bucket/prefix" in config_error(
        tmp_path, "  url: gs://pictures/x\n"
    )
    assert "storage.url: 'pictures' is not s3://bucket/prefix" in config_error(
        tmp_path, "  url: pictures\n"
    )
    assert "storage.url: 's3://minio:9000/x': a bucket name has no port" in config_error(
        tmp_path, "  url: s3://minio:9000/x\n"
    )
    leaked = config_error(tmp_path, "  url: s3://AKIDKEY:hunter2secret@pictures/x\n")
    assert "storage.url: credentials do not go in the URL" in leaked
    assert "hunter2secret" not in leaked
    assert "storage.endpoint_url: 'minio:9000' is not an http://" in config_error(
        tmp_path, "  url: s3://pictures\n  endpoint_url: minio:9000\n"
    )


def test_the_environment_names_the_storage_over_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IPCAM_STORAGE_URL", "s3://from-env/node")
    config = load_config(config_with(tmp_path, "  url: s3://from-file/x\n  region: eu-north-1\n"))
    assert config.storage.url == "s3://from-env/node"
    assert config.storage_settings().region == "eu-north-1"
    assert load_config(config_with(tmp_path, "")).storage.url == "s3://from-env/node"
    monkeypatch.setenv("IPCAM_STORAGE_URL", "ftp://somewhere/x")
    wrong = config_error(tmp_path, "")
    assert "storage.url: 'ftp://somewhere/x'" in wrong and "(set by IPCAM_STORAGE_URL)" in wrong


@pytest.fixture
def bucket(aws: Moto) -> str:
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return BUCKET


def keys_in(bucket: str) -> list[str]:
    answer = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def test_s3_storage_writes_reads_and_deletes_under_its_prefix(bucket: str) -> None:
    storage = open_storage(StorageSettings(url=f"s3://{bucket}/site-a/", region=REGION), Path())
    assert storage.shared
    storage.check()
    storage.write("snapshots/2026-11-23/1.jpg", b"picture")
    storage.write("uploads/abc/x.jpg", b"upload")
    assert keys_in(bucket) == ["site-a/snapshots/2026-11-23/1.jpg", "site-a/uploads/abc/x.jpg"]
    assert storage.read("uploads/abc/x.jpg") == b"upload"
    with pytest.raises(FileNotFoundError):
        storage.read("uploads/abc/gone.jpg")
    with pytest.raises(FileNotFoundError):  # keys the store never writes are never asked for
        storage.read("snapshots/../uploads/abc/x.jpg")
    storage.delete(["uploads/abc/x.jpg", "uploads/abc/gone.jpg"])
    assert keys_in(bucket) == ["site-a/snapshots/2026-11-23/1.jpg"]
    storage.delete([f"snapshots/{n}.jpg" for n in range(1500)])  # more than one request's worth


def test_s3_storage_outage_and_missing_bucket_are_one_line(bucket: str) -> None:
    host, port = "127.0.0.1", free_port()  # nothing listens there
    closed = S3Storage(bucket, "p", REGION, f"http://{host}:{port}")
    with pytest.raises(StorageError) as caught:
        closed.write("uploads/a/x.jpg", b"x")
    assert str(caught.value).startswith(f"s3://{bucket}/p/ at http://{host}:{port}: cannot write")
    assert "(cannot be reached)" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(OSError):
        closed.read("uploads/a/x.jpg")
    closed.check()  # only logged: the service starts and refuses uploads until it is back
    with pytest.raises(UserError, match=r"storage.url: cannot use s3://no-such-bucket/ \(no such"):
        S3Storage("no-such-bucket", "", REGION, None).check()


def test_s3_storage_comes_back_after_an_outage(bucket: str, aws: Moto) -> None:
    host, port = aws.endpoint.removeprefix("http://").split(":")
    proxy = OutageProxy((host, int(port)))
    storage = S3Storage(bucket, "", REGION, proxy.url)
    proxy.cut()
    with pytest.raises(StorageError):
        storage.write("uploads/a/x.jpg", b"x")
    proxy.restore()
    storage.write("uploads/a/x.jpg", b"x")
    assert keys_in(bucket) == ["uploads/a/x.jpg"]


def test_local_storage_keeps_files_inside_its_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    assert not storage.shared
    storage.write("snapshots/2026-11-23/1.jpg", b"picture")
    path = tmp_path / "data" / "snapshots" / "2026-11-23" / "1.jpg"
    assert storage.local_path("snapshots/2026-11-23/1.jpg") == path.resolve()
    assert storage.read("snapshots/2026-11-23/1.jpg") == b"picture"
    (tmp_path / "secret.txt").write_text("not a picture")
    for outside in ("../secret.txt", str(tmp_path / "secret.txt"), "snapshots/../../secret.txt"):
        assert storage.local_path(outside) is None
        with pytest.raises(FileNotFoundError):
            storage.read(outside)
    storage.delete(["snapshots/2026-11-23/1.jpg", "../secret.txt"])
    assert not (tmp_path / "data" / "snapshots").exists()  # emptied folders go too
    assert (tmp_path / "secret.txt").exists()
