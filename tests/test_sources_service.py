"""The e-mail and alarm sources in the whole service: real clients → queue → Rekognition (moto)
→ SES (moto), MQTT (mosquitto) and the dashboard's API."""

from __future__ import annotations

import re
import smtplib
import socket
from typing import Any

import httpx
import pytest

from harness.aws import Moto, label
from harness.backends import query_database
from harness.mail_camera import camera_mail
from harness.mqtt import Broker
from harness.service import (
    DATA,
    PASSWORDS,
    RunningService,
    base_config,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from tests.test_ingest_alarm import HUMAN, SERIAL, alarm_frame

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
STREET_JPEG = (DATA / "opencv_vtest_f0000.jpg").read_bytes()
TREE_JPEG = (DATA / "opencv_tree_f0000.jpg").read_bytes()
TREE = label("Tree", 90.0, parents=("Plant",))


def person(confidence: float) -> dict[str, Any]:
    return label("Person", confidence, boxes=((0.25, 0.2, 0.2, 0.6),))


def with_smtp(run_service, **overrides: Any) -> RunningService:
    return run_service(smtp_server={"enabled": True, "host": "127.0.0.1", "port": 0}, **overrides)


def send_mail(
    service: RunningService, message, camera: str = "cam01", password: str | None = None
) -> None:
    with smtplib.SMTP(*service.service.sources["smtp"].address, timeout=30) as client:
        client.login(camera, password or PASSWORDS[camera])
        client.send_message(message)


def api(service: RunningService, path: str, **params: Any) -> Any:
    assert service.service.web is not None
    response = httpx.get(service.service.web.url.rstrip("/") + path, params=params, timeout=30)
    response.raise_for_status()
    return response.json() if path.startswith(("/api/", "/healthz")) else response.text


def test_a_burst_alerts_once_with_its_strongest_picture(run_service, aws: Moto) -> None:
    strength = {PERSON_JPEG: person(86.0), STREET_JPEG: person(99.0), TREE_JPEG: TREE}
    aws.rekognition.answer = lambda image: [strength[image]]
    service = with_smtp(run_service)
    pictures = [("a.jpg", PERSON_JPEG), ("b.jpg", STREET_JPEG), ("c.jpg", TREE_JPEG)]
    send_mail(service, camera_mail(pictures, subject="Motion alarm", text="Channel: D1"))
    service.wait_idle()

    (message,) = aws.sent_emails()
    assert "Person" in message["Subject"]
    events = api(service, "/api/events")["events"]
    burst = events[0]["burst_id"]
    assert burst and api(service, "/api/events", burst=burst)["events"] == events
    by_name = {event["original_name"].rsplit("-", 1)[-1]: event for event in events}
    assert by_name["b.jpg"]["outcome"] == "alert"
    assert by_name["a.jpg"]["outcome"] == "suppressed"
    assert (
        f"burst alerted with {by_name['b.jpg']['original_name'].rsplit('/', 1)[-1]}"
        in (by_name["a.jpg"]["reason"])
    )
    assert by_name["c.jpg"]["outcome"] == "no_match"
    for event in events:
        assert event["source"] == "smtp" and event["burst_size"] == 3
        assert event["note"] == "Motion alarm\nChannel: D1"
    assert api(service, "/", burst=burst).count("3 in one e-mail") == 3  # grouped on the list
    listeners = api(service, "/healthz")["listeners"]
    assert listeners["smtp"]["up"] and listeners["ftp"]["up"]
    page = api(service, f"/events/{by_name['b.jpg']['id']}")
    assert "Channel: D1" in page and "the 3 pictures of the same e-mail" in page


def test_a_mail_without_a_picture_is_a_connection_test_and_a_cut_picture_corrupt(
    run_service, aws: Moto
) -> None:
    service = with_smtp(run_service, cameras={"cam02": {"smtp_from": "cam02@cameras.example"}})
    message = camera_mail(
        subject="Test", text="This is a test e-mail", sender="cam02@cameras.example"
    )
    truncated = camera_mail([("cut.jpg", PERSON_JPEG[:5000])], sender="cam02@cameras.example")
    with smtplib.SMTP(*service.service.sources["smtp"].address, timeout=30) as client:
        client.send_message(message)  # no login: known by its sender address
        client.send_message(truncated)
    service.wait_idle()
    damaged, test = api(service, "/api/events")["events"]
    assert (test["camera"], test["outcome"], test["source"]) == ("cam02", "not_image", "smtp")
    assert test["note"] == "Test\nThis is a test e-mail"
    assert (damaged["outcome"], damaged["original_name"][-7:]) == ("corrupt", "cut.jpg")
    assert aws.sent_emails() == []  # no alert, no error e-mail


def test_ftp_keeps_serving_while_smtp_is_abused(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [person(97.0)]
    service = with_smtp(run_service)
    smtp_address = service.service.sources["smtp"].address
    flood = [socket.create_connection(smtp_address, timeout=30) for _ in range(30)]
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(*smtp_address, timeout=30)
    assert refused.value.smtp_code == 421
    with pytest.raises(smtplib.SMTPAuthenticationError):
        flood[0].close()
        send_mail(service, camera_mail(), camera="cam01", password="wrong")
    upload(service.address, "cam01", PERSON_JPEG, "2026-12-03/ftp.jpg")
    service.wait_idle()
    for sock in flood:
        sock.close()
    assert service.outcomes() == [("2026-12-03/ftp.jpg", "alert")]
    assert len(aws.sent_emails()) == 1


def test_an_alarm_is_recorded_published_and_noted_on_the_next_upload(
    run_service, aws: Moto, mqtt_broker: Broker
) -> None:
    aws.rekognition.labels = [person(97.0)]
    watcher = mqtt_broker.watch()
    service = run_service(
        alarm_server={"enabled": True, "host": "127.0.0.1", "port": 0},
        cameras={"cam01": {"serial_id": SERIAL}},
        mqtt={"host": "127.0.0.1", "port": mqtt_broker.port, "alert_seconds": 60},
    )
    # cam02 uploaded from this address before: an alarm without a known serial is cam02's.
    upload(service.address, "cam02", TREE_JPEG, "before.jpg")
    service.wait_idle()
    alarm_address = service.service.sources["alarm"].address
    for body in (HUMAN, {**HUMAN, "SerialID": "unknown", "Event": "MotionDetect"}):
        with socket.create_connection(alarm_address, timeout=30) as sock:
            sock.sendall(alarm_frame(body))
    reported = wait_until(
        lambda: len(events := api(service, "/api/camera_events")["camera_events"]) == 2 and events,
        what="two camera events",
    )
    # Two connections are served at once: either may be recorded first.
    assert sorted((e["camera"], e["event"]) for e in reported) == [
        ("cam01", "HumanDetect"),
        ("cam02", "MotionDetect"),
    ]
    watcher.wait_for("ipcam_analysis/cam01/camera_event")
    watcher.wait_for("ipcam_analysis/cam01/camera_motion", "ON")
    assert "HumanDetect" in api(service, "/cameras")

    upload(service.address, "cam01", PERSON_JPEG, "after.jpg")
    service.wait_idle()
    latest = api(service, "/api/events")["events"][0]
    assert (latest["original_name"], latest["note"]) == ("after.jpg", "camera reported HumanDetect")


def test_sigkill_after_the_250_loses_no_picture(tmp_path, aws: Moto, service_process) -> None:
    aws.rekognition.labels = [person(97.0)]
    aws.rekognition.delay_seconds = 1.5
    smtp = {"enabled": True, "host": "127.0.0.1", "port": 0}
    path = write_config(tmp_path, base_config(tmp_path, workers=1, smtp_server=smtp))
    env = service_environment(aws)
    first = service_process(["-c", str(path), "-n"], env)
    first.address()
    smtp_port = wait_until(
        lambda: re.search(r"SMTP server listening on [\d.]+:(\d+)", first.output), 60, "SMTP"
    )
    pictures = [(f"{n}.jpg", PERSON_JPEG) for n in range(3)]
    with smtplib.SMTP("127.0.0.1", int(smtp_port.group(1)), timeout=30) as client:
        client.login("cam01", PASSWORDS["cam01"])
        client.send_message(camera_mail(pictures))  # returns on the 250
    wait_until(lambda: aws.rekognition.calls >= 1, what="analysis to start")
    first.kill()

    aws.rekognition.delay_seconds = 0
    second = service_process(["-c", str(path), "-n"], env)
    second.address()

    def outcomes() -> list[str] | None:
        rows = query_database(tmp_path / "data", "SELECT state, outcome FROM uploads ORDER BY id")
        done = len(rows) == 3 and all(state == "done" for state, _ in rows)
        return sorted(outcome for _, outcome in rows) if done else None

    assert wait_until(outcomes, 60, "the three pictures") == ["alert", "suppressed", "suppressed"]
    assert second.terminate() == 0
    assert len(aws.sent_emails()) == 1
