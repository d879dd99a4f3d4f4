"""HTTP push through the whole service: upload → Rekognition (moto) → SES mail → dashboard."""

from __future__ import annotations

import ftplib
import socket
import threading
from contextlib import ExitStack

import httpx
import pytest

from harness.aws import Moto, label
from harness.backends import query_database
from harness.endurance import FixedLatencyDetector
from harness.service import (
    DATA,
    PASSWORDS,
    RunningService,
    base_config,
    free_port,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from ipcam_analysis.ingest.http import MAX_UPLOADS_AT_ONCE
from ipcam_analysis.web.auth import hash_password

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 98.7, boxes=((0.25, 0.2, 0.2, 0.6),))
HTTP_INGEST = {"enabled": True, "host": "127.0.0.1", "port": 0}
DASHBOARD_LOGIN = ("owner", "dashboard-secret-pw")


def post_picture(service: RunningService, name: str) -> httpx.Response:
    return httpx.post(
        upload_url(service) + f"?name={name}",
        content=PERSON_JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", PASSWORDS["cam01"]),
        timeout=30,
    )


def upload_url(service: RunningService) -> str:
    host, port = service.service.sources["http"].address
    return f"http://{host}:{port}/upload"


def dashboard(service: RunningService, path: str, auth: tuple[str, str] = DASHBOARD_LOGIN):
    assert service.service.web is not None
    return httpx.get(service.service.web.url + path.lstrip("/"), auth=auth, timeout=30)


def start(run_service) -> RunningService:
    web = {"username": DASHBOARD_LOGIN[0], "password_hash": hash_password(DASHBOARD_LOGIN[1])}
    return run_service(http_ingest=HTTP_INGEST, web=web)


def test_http_upload_alerts_by_email_and_shows_as_http(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = start(run_service)
    answer = httpx.post(
        upload_url(service) + "?name=porch.jpg",
        content=PERSON_JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", PASSWORDS["cam01"]),
        timeout=30,
    )
    assert answer.status_code == 201
    service.wait_idle()

    (message,) = aws.sent_emails()
    assert "cam01" in message["Subject"] and "Person" in message["Subject"]
    [event] = dashboard(service, "/api/events").json()["events"]
    assert (event["camera"], event["source"], event["original_name"]) == (
        "cam01",
        "http",
        "porch.jpg",
    )
    assert event["outcome"] == "alert"
    page = dashboard(service, f"/events/{event['id']}").text
    assert '<dd class="source">HTTP</dd>' in page
    assert '<span class="source"' in dashboard(service, "/").text
    health = dashboard(service, "/healthz").json()
    assert health["listeners"]["http"]["up"] is True
    assert health["listeners"]["ftp"]["up"] is True
    # Analysed: the kept file and the day's folder are gone, the camera's home stays.
    home = service.service.config.ftp_server.root_dir / "cam01"
    wait_until(lambda: not any(home.iterdir()), what="the upload to be removed")


def test_camera_and_dashboard_credentials_do_not_cross(run_service, aws: Moto) -> None:
    service = start(run_service)
    camera = ("cam01", PASSWORDS["cam01"])
    assert dashboard(service, "/api/events", auth=camera).status_code == 401
    refused = httpx.post(
        upload_url(service),
        content=PERSON_JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=DASHBOARD_LOGIN,
        timeout=30,
    )
    assert refused.status_code == 401
    assert service.service.queue.depth() == 0


def test_ftp_keeps_serving_while_http_is_flooded(run_service, aws: Moto) -> None:
    service = start(run_service)
    host, port = service.service.sources["http"].address
    with ExitStack() as flood:
        for _ in range(MAX_UPLOADS_AT_ONCE + 10):
            flood.enter_context(socket.create_connection((host, port)))
        upload(service.address, "cam02", PERSON_JPEG, "during-flood.jpg")  # 226: queued
    service.wait_idle()
    assert [name for name, _ in service.outcomes()] == ["during-flood.jpg"]


def test_http_and_ftp_share_the_back_pressure(run_service, aws: Moto) -> None:
    gate = threading.Event()  # the first upload stays in analysis: the queue is full
    service = run_service(
        lambda kind: FixedLatencyDetector(kind, gate=gate),
        http_ingest=HTTP_INGEST,
        ftp_server={"max_queued_uploads": 1},
    )
    try:
        first = post_picture(service, "first.jpg")
        assert first.status_code == 201
        refused = post_picture(service, "second.jpg")
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
        with pytest.raises(ftplib.error_temp, match=r"^452 Too many uploads"):
            upload(service.address, "cam02", PERSON_JPEG, "by-ftp.jpg")
    finally:
        gate.set()
    service.wait_idle()
    # The queue's depth is counted at most once a second: accepted again soon after it drains.
    wait_until(lambda: post_picture(service, "third.jpg").status_code == 201, what="a 201")
    service.wait_idle()
    assert [name for name, _ in service.outcomes()] == ["first.jpg", "third.jpg"]


def test_sigkill_right_after_the_201_loses_nothing(tmp_path, aws: Moto, service_process) -> None:
    aws.rekognition.labels = [PERSON]
    aws.rekognition.delay_seconds = 30  # the first process never finishes the analysis
    port = free_port()
    config = base_config(tmp_path, http_ingest={**HTTP_INGEST, "port": port})
    path = write_config(tmp_path, config)
    env = service_environment(aws)
    url = f"http://127.0.0.1:{port}/upload?name=killed.jpg"

    def post() -> httpx.Response:
        headers = {"Content-Type": "image/jpeg"}
        auth = ("cam01", PASSWORDS["cam01"])
        return httpx.post(url, content=PERSON_JPEG, headers=headers, auth=auth, timeout=30)

    first = service_process(["-c", str(path), "-n"], env)
    first.address()
    wait_until(lambda: "HTTP uploads on" in first.output, what="the HTTP listener")
    assert post().status_code == 201
    first.kill()

    aws.rekognition.delay_seconds = 0
    second = service_process(["-c", str(path), "-n"], env)
    second.address()
    wait_until(lambda: len(aws.sent_emails()) == 1, 60, "the alert after the restart")
    assert second.terminate() == 0
    rows = query_database(tmp_path / "data", "SELECT original_name, source, outcome FROM events")
    assert rows == [("killed.jpg", "http", "alert")]
