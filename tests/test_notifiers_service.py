"""Every notifier through the running service: SMTP over STARTTLS and TLS with a real
certificate chain, a mail server down then up, a broker restarted mid-run, a webhook refusing
then accepting, per-camera targets; one channel failing never blocks or repeats another."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.mqtt import Broker
from harness.service import (
    RunningService,
    base_config,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from harness.smtp import HOST, free_port, running_sink
from harness.webhook import WebhookSink
from ipcam_analysis.notify.smtp import SmtpConfig


def smtp_email(port: int, security: str) -> dict[str, object]:
    return {
        "transport": "smtp",
        "smtp": {"host": HOST, "port": port, "security": security, "timeout_seconds": 10},
    }


def notifications(running: RunningService) -> dict[str, bool]:
    """The last event's notifiers and whether each delivered."""
    rows = running.service.database.query("SELECT notifications FROM events ORDER BY id")
    return {n["notifier"]: n["ok"] for n in json.loads(rows[-1][0])}


def upload_and_wait(running: RunningService, camera: str = "cam01") -> None:
    upload(running.address, camera, PERSON_JPEG, f"{camera}.jpg")
    running.wait_idle()


@pytest.fixture
def ca_and_server_tls(tmp_path: Path) -> Iterator[tuple[Path, ssl.SSLContext]]:
    """A CA file a client can trust, and a server context with a certificate it signed for the
    loopback address."""
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(HOST).configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    yield ca_file, server


@pytest.mark.parametrize(
    ("security", "trust"),
    [("starttls", "SSL_CERT_FILE"), ("tls", "SSL_CERT_FILE"), ("tls", "cafile")],
)
def test_smtp_with_tls_delivers_the_alert_from_the_running_service(
    tmp_path: Path,
    aws: Moto,
    service_process,
    ca_and_server_tls: tuple[Path, ssl.SSLContext],
    security: str,
    trust: str,
) -> None:
    ca_file, server_tls = ca_and_server_tls
    aws.rekognition.labels = [PERSON]
    with running_sink(with_login=True, tls=server_tls, security=security) as sink:
        email = smtp_email(sink.port, security)
        email["smtp"] |= {"username": sink.username, "password": sink.password}
        # The service trusts the test CA as a user trusts a private one: the environment's
        # SSL_CERT_FILE, or the smtp section's cafile.
        extra_env = {"SSL_CERT_FILE": str(ca_file)} if trust == "SSL_CERT_FILE" else {}
        if trust == "cafile":
            email["smtp"] |= {"cafile": str(ca_file)}
        config = write_config(tmp_path, base_config(tmp_path, email=email))
        env = service_environment(aws, **extra_env)
        service = service_process(["-c", str(config), "-n"], env)
        upload(service.address(), "cam01", PERSON_JPEG, "tls.jpg")

        (mail,) = wait_until(lambda: sink.received, 60, "the alert e-mail")
        assert service.terminate() == 0
    assert mail.tls and mail.login == sink.username
    assert mail.message["Subject"] == "⚡ cam01: detected Person"
    images = [p for p in mail.message.walk() if p.get_content_type() == "image/jpeg"]
    assert len(images) == 1 and images[0].get_content()[:2] == b"\xff\xd8"  # one copy, inline
    assert "Alert for cam01 (event 1, tls.jpg) sent by email" in service.output


def test_smtp_down_then_up_delivers_the_alert_once(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    port = free_port()  # nothing listens there yet
    running = run_service(email=smtp_email(port, "none"))
    upload(running.address, "cam01", PERSON_JPEG, "outage.jpg")
    wait_until(
        lambda: running.service.database.query(
            "SELECT 1 FROM uploads WHERE last_error LIKE '%cannot connect%'"
        ),
        what="a failed attempt",
    )
    with running_sink(with_login=False, port=port) as sink:
        running.wait_idle()
        assert len(sink.messages) == 1
    assert running.outcomes() == [("outage.jpg", "alert")]
    assert notifications(running) == {"email": True}
    assert aws.rekognition.calls == 1  # the retries did not pay for the picture again


def test_broker_restarted_mid_run_gets_the_alert_from_the_queue_and_email_is_not_repeated(
    run_service, aws: Moto, mqtt_broker: Broker
) -> None:
    aws.rekognition.labels = [PERSON]
    running = run_service(mqtt={"host": mqtt_broker.host, "port": mqtt_broker.port})
    mqtt_broker.stop()
    upload(running.address, "cam01", PERSON_JPEG, "broker.jpg")
    wait_until(
        lambda: running.service.database.query(
            "SELECT 1 FROM uploads WHERE last_error LIKE 'mqtt:%' AND notified = '[\"email\"]'"
        ),
        what="e-mail sent and MQTT failed",
    )
    mqtt_broker.start()
    running.wait_idle()

    snapshot = mqtt_broker.retained("ipcam_analysis/cam01/snapshot")
    assert snapshot[:2] == b"\xff\xd8"
    assert running.outcomes() == [("broker.jpg", "alert")]
    assert notifications(running) == {"email": True, "mqtt": True}
    assert len(aws.sent_emails()) == 1


def test_webhook_refusing_then_accepting_gets_the_alert_and_email_is_sent_once(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    webhook_sink.refusing = True
    running = run_service(notify=[webhook_sink.url("/hook")])
    upload(running.address, "cam01", PERSON_JPEG, "hook.jpg")
    wait_until(lambda: len(webhook_sink.received("/hook")) >= 2, what="a refusal and a retry")
    assert len(aws.sent_emails()) == 1
    webhook_sink.refusing = False
    running.wait_idle()

    last = webhook_sink.received("/hook")[-1].json()
    assert last["message"].splitlines()[-1] == "Event 1"
    assert notifications(running) == {"email": True, "apprise:json": True}
    assert len(aws.sent_emails()) == 1


def test_each_camera_notifies_its_own_targets(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    running = run_service(
        notify=[webhook_sink.url("/everyone")],
        cameras={"cam02": {"notify": [webhook_sink.url("/cam02-only")]}},
    )
    upload_and_wait(running, "cam01")
    upload_and_wait(running, "cam02")

    titles = {
        path: [request.json()["title"] for request in webhook_sink.received(path)]
        for path in ("/everyone", "/cam02-only")
    }
    assert titles == {"/everyone": ["cam01: Person"], "/cam02-only": ["cam02: Person"]}


@pytest.mark.parametrize(
    ("cafile", "problem"),
    [("ca.pem", "must be an absolute path"), ("/nonexistent/ca.pem", "is not a file")],
)
def test_an_unusable_cafile_is_a_clear_error(cafile: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SmtpConfig(host=HOST, cafile=cafile)
