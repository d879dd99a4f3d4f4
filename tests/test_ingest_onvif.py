"""Cameras that only announce motion, in the whole service: a fake ONVIF camera (harness/onvif.py)
followed through onvif-zeep-async → its snapshot → queue → Rekognition (moto) → SES (moto)."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from harness.aws import Moto, label
from harness.onvif import (
    CELL_MOTION,
    MOTION_ALARM,
    PASSWORD,
    SNAPSHOT_PATH,
    USERNAME,
    FakeOnvifCamera,
    OnvifCameras,
)
from harness.service import DATA, RunningService, wait_until
from ipcam_analysis.config import load_config
from tests.test_config import error_of, write
from tests.test_ingest_alarm import HUMAN, SERIAL, alarm_frame

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 97.0, boxes=((0.25, 0.2, 0.2, 0.6),))


def onvif_settings(camera: FakeOnvifCamera, **overrides: Any) -> dict[str, Any]:
    return {
        "address": f"{camera.host}:{camera.port}",
        "username": USERNAME,
        "password": PASSWORD,
        **overrides,
    }


def follow(run_service, camera: FakeOnvifCamera, **overrides: Any) -> RunningService:
    return run_service(cameras={"cam01": {"onvif": onvif_settings(camera)}}, **overrides)


def get(service: RunningService, path: str) -> Any:
    assert service.service.web is not None
    response = httpx.get(service.service.web.url.rstrip("/") + path, timeout=30)
    return response.json() if path.startswith(("/api/", "/healthz")) else response.text


def link(service: RunningService, camera: str = "cam01") -> dict[str, Any]:
    return get(service, "/healthz")["camera_links"][camera]


def wait_for_state(service: RunningService, state: str) -> dict[str, Any]:
    return wait_until(
        lambda: (found := link(service))["state"] == state and found, 60, f"the link {state}"
    )


def log_text(service: RunningService) -> str:
    return (service.service.config.data_dir / "ipcam_analysis.log").read_text(encoding="utf-8")


def alert_picture(aws: Moto, count: int = 1) -> Image.Image:
    messages = wait_until(lambda: len(found := aws.sent_emails()) >= count and found, 60, "alert")
    assert len(messages) == count
    assert "cam01" in messages[-1]["Subject"] and "Person" in messages[-1]["Subject"]
    (jpeg,) = [
        part for part in messages[-1].iter_attachments() if part.get_content_type() == "image/jpeg"
    ]
    return Image.open(io.BytesIO(jpeg.get_content()))


def test_motion_alerts_with_the_cameras_snapshot(
    run_service, aws: Moto, onvif_cameras: OnvifCameras
) -> None:
    aws.rekognition.labels = [PERSON]
    camera = onvif_cameras.start(PERSON_JPEG)
    service = follow(run_service, camera)
    connected = wait_for_state(service, "connected")
    assert connected["source"] == "onvif" and connected["error"] is None
    assert "ONVIF: subscribed to motion events" in get(service, "/cameras")

    camera.motion(MOTION_ALARM)
    assert alert_picture(aws).size == Image.open(io.BytesIO(PERSON_JPEG)).size
    (event,) = get(service, "/api/events")["events"]
    assert (event["source"], event["outcome"]) == ("onvif", "alert")
    assert event["note"] == f"ONVIF motion: {MOTION_ALARM}"
    assert camera.snapshots_served == 1  # fetched with digest authentication
    assert link(service)["last_motion"] is not None
    log = log_text(service)
    assert "ONVIF camera cam01: subscribed to motion events" in log
    assert f"ONVIF camera cam01 reported motion ({MOTION_ALARM})" in log
    assert PASSWORD not in log
    service.wait_idle()  # the snapshot fetched is removed once analysed
    home = Path(service.service.config.ftp_server.root_dir) / "cam01"
    wait_until(lambda: not any(home.rglob("*.jpg")), what="the snapshot to be removed")


def test_a_dropped_subscription_is_made_again(
    run_service, aws: Moto, onvif_cameras: OnvifCameras
) -> None:
    aws.rekognition.labels = [PERSON]
    # Older firmware: no GetServices, the addresses come from GetCapabilities.
    camera = onvif_cameras.start(PERSON_JPEG, without_get_services=True)
    service = follow(run_service, camera)
    wait_for_state(service, "connected")

    camera.drop_subscriptions()  # as a reboot does: the next pull is answered with a fault
    wait_until(lambda: camera.calls("CreatePullPointSubscription") == 2, 60, "a new subscription")
    again = wait_for_state(service, "connected")
    assert again["error"] is None
    camera.motion(CELL_MOTION)
    assert alert_picture(aws).size == Image.open(io.BytesIO(PERSON_JPEG)).size
    log = log_text(service)
    assert (
        "ONVIF camera cam01: the subscription ended (PullMessages: the camera answered a fault:"
        " Unknown subscription (ResourceUnknownFault)); trying again in" in log
    )
    assert "ONVIF camera cam01: subscribed to motion events again" in log


def test_a_camera_answering_500_is_shown_failing_and_recovers(
    run_service, aws: Moto, onvif_cameras: OnvifCameras
) -> None:
    aws.rekognition.labels = [PERSON]
    camera = onvif_cameras.start(PERSON_JPEG, create_fails=True)
    service = follow(run_service, camera)
    failing = wait_for_state(service, "failing")
    assert failing["error"] == (
        "CreatePullPointSubscription: the camera's answer is no SOAP (an error page?)"
    )
    assert failing["retry_at"] is not None
    page = get(service, "/cameras")
    assert "ONVIF: cannot subscribe" in page and "CreatePullPointSubscription: " in page
    wait_until(lambda: camera.calls("CreatePullPointSubscription") >= 2, 60, "a second try")
    assert link(service)["state"] == "failing"

    camera.create_fails = False
    wait_for_state(service, "connected")
    camera.motion()
    assert alert_picture(aws).size == Image.open(io.BytesIO(PERSON_JPEG)).size
    log = log_text(service)
    line = "ONVIF camera cam01: cannot subscribe to motion events (CreatePullPointSubscription: "
    assert log.count(line) == 1  # the same failure again is not logged again
    assert "ONVIF camera cam01: subscribed to motion events again" in log


def test_a_wrong_password_is_said_so(run_service, onvif_cameras: OnvifCameras) -> None:
    camera = onvif_cameras.start(PERSON_JPEG)
    service = run_service(
        cameras={"cam01": {"onvif": onvif_settings(camera, password="not-the-password")}}
    )
    failing = wait_for_state(service, "failing")
    assert failing["error"] == (
        "GetSystemDateAndTime, GetServices: the camera refused the user name or password:"
        " check cameras.cam01.onvif.username and password"
    )
    assert camera.calls("CreatePullPointSubscription") == 0
    assert "not-the-password" not in log_text(service)


def test_an_alarm_fetches_the_snapshot_url(
    run_service, aws: Moto, onvif_cameras: OnvifCameras
) -> None:
    aws.rekognition.labels = [PERSON]
    # An XMeye camera: it reports its alarms itself; its snapshot asks for basic authentication.
    camera = onvif_cameras.start(PERSON_JPEG, snapshot_auth="basic")
    snapshot = {"snapshot_url": camera.base_url + SNAPSHOT_PATH}
    service = run_service(
        alarm_server={"enabled": True, "host": "127.0.0.1", "port": 0},
        cameras={
            "cam01": {
                "serial_id": SERIAL,
                "onvif": {"username": USERNAME, "password": PASSWORD, **snapshot},
            }
        },
    )
    assert link(service)["state"] == "on_alarm"
    with socket.create_connection(service.service.sources["alarm"].address, timeout=30) as sock:
        sock.sendall(alarm_frame(HUMAN))
    assert alert_picture(aws).size == Image.open(io.BytesIO(PERSON_JPEG)).size
    (event,) = get(service, "/api/events")["events"]
    assert (event["source"], event["note"]) == ("onvif", "camera reported HumanDetect")
    assert camera.calls("CreatePullPointSubscription") == 0  # no ONVIF asked
    assert "Snapshot fetched on the camera&#39;s alarm" in get(service, "/cameras")


def test_onvif_settings_are_checked_and_their_secrets_masked(tmp_path: Path) -> None:
    camera = "ftp_server: {users: {cam01: pw-cam01-secret}}\ncameras:\n  cam01:\n    onvif: "
    assert "set address (the camera's ONVIF address), snapshot_url, or both" in error_of(
        tmp_path, camera + "{username: admin}"
    )
    assert "cameras.cam01.onvif.address" in error_of(tmp_path, camera + "{address: 'ftp://x'}")
    assert "cameras.cam01.onvif.snapshot_url" in error_of(
        tmp_path, camera + "{snapshot_url: 'rtsp://192.168.1.30/snap'}"
    )
    settings = (
        "{address: '192.168.1.30:2020', username: admin, password: Onvif-Secret-1,"
        " snapshot_url: 'http://192.168.1.30/snap.jpg?pwd=Url-Secret-2'}"
    )
    config = load_config(write(tmp_path, camera + settings))
    dumped = config.masked_dump()["cameras"]["cam01"]["onvif"]
    assert (dumped["password"], dumped["snapshot_url"]) == ("****", "****")
    assert {"Onvif-Secret-1", "http://192.168.1.30/snap.jpg?pwd=Url-Secret-2"} <= set(
        config.secrets()
    )
    assert list(config.source_settings()["onvif"]) == ["cam01"]


def test_a_refused_snapshot_is_shown_and_logged_once(
    run_service, aws: Moto, onvif_cameras: OnvifCameras
) -> None:
    camera = onvif_cameras.start(PERSON_JPEG)
    url = f"http://{USERNAME}:Url-Secret-9@{camera.host}:{camera.port}{SNAPSHOT_PATH}"
    service = run_service(
        alarm_server={"enabled": True, "host": "127.0.0.1", "port": 0},
        cameras={"cam01": {"serial_id": SERIAL, "onvif": {"snapshot_url": url}}},
    )
    for n, event in enumerate(("HumanDetect", "MotionDetect"), start=1):
        with socket.create_connection(service.service.sources["alarm"].address) as sock:
            sock.sendall(alarm_frame({**HUMAN, "Event": event}))
        wait_until(lambda e=event: e in get(service, "/cameras"), what=f"the {event} alarm")
        wait_until(lambda n=n: camera.snapshots_refused == n, what=f"refusal {n}")
    refused = link(service)
    assert refused["snapshot_error"] == (
        "the camera refused the user name or password (HTTP 401): check"
        " cameras.cam01.onvif.username and password"
    )
    assert "Last snapshot failed: the camera refused" in get(service, "/cameras")
    log = log_text(service)
    assert log.count("Camera cam01: the snapshot could not be fetched: the camera refused") == 1
    assert "Url-Secret-9" not in log
    assert get(service, "/api/events")["events"] == [] and aws.sent_emails() == []
