"""The webhook notifier through the running service, against a real HTTP server on loopback: the
event and the boxed picture as JSON, each camera's own URL, a refusal retried without sending
the other channels twice, and its secrets kept out of the log and of --check-config."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.service import (
    base_config,
    upload,
    wait_until,
    write_config,
)
from harness.webhook import WebhookSink
from ipcam_analysis.config import load_config
from tests.test_cli import check_config
from tests.test_notifiers_service import notifications

TOKEN = "Bearer Hook-T0ken-5521"
HOOK_ID = "ha-webhook-id-7f3a91"  # Home Assistant's webhook ids are secrets: anyone may call them


def webhook(sink: WebhookSink, path: str, **settings: Any) -> dict[str, Any]:
    return {"url": f"http://{sink.host}:{sink.port}{path}", **settings}


def test_the_event_and_the_boxed_picture_arrive_as_json(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    running = run_service(
        webhook=webhook(webhook_sink, "/hook", headers={"Authorization": TOKEN}),
        web={"public_url": "http://nvr.lan:8080"},
    )
    upload(running.address, "cam01", PERSON_JPEG, "person.jpg")
    running.wait_idle()

    (request,) = webhook_sink.received("/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == TOKEN
    event = request.json()
    assert (event["camera"], event["event_id"]) == ("cam01", 1)
    assert event["snapshot_url"] == "http://nvr.lan:8080/events/1"
    (person,) = event["labels"]
    assert person["name"] == "Person" and person["confidence"] == 97.0
    assert person["boxes"][0]["width"] == 0.2
    image = event["image"]
    picture = Image.open(io.BytesIO(base64.b64decode(image["base64"])))
    assert picture.format == "JPEG"
    assert picture.size == (image["width"], image["height"])
    assert picture.size == Image.open(io.BytesIO(PERSON_JPEG)).size
    assert image["file_name"].startswith("cam01_") and image["file_name"].endswith(".jpg")
    assert notifications(running) == {"email": True, "webhook": True}


def test_a_camera_has_its_own_url_and_keeps_the_global_headers(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    running = run_service(
        webhook=webhook(webhook_sink, "/everyone", headers={"Authorization": TOKEN}),
        cameras={"cam02": {"webhook": {"url": webhook(webhook_sink, "/cam02-only")["url"]}}},
    )
    for camera in ("cam01", "cam02"):
        upload(running.address, camera, PERSON_JPEG, f"{camera}.jpg")
        running.wait_idle()

    received = {
        path: [request.json()["camera"] for request in webhook_sink.received(path)]
        for path in ("/everyone", "/cam02-only")
    }
    assert received == {"/everyone": ["cam01"], "/cam02-only": ["cam02"]}
    (own,) = webhook_sink.received("/cam02-only")
    assert own.headers["Authorization"] == TOKEN


def test_a_refusing_webhook_is_retried_and_email_is_sent_once(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    webhook_sink.refusing = True
    running = run_service(webhook=webhook(webhook_sink, "/hook"))
    upload(running.address, "cam01", PERSON_JPEG, "retried.jpg")
    wait_until(lambda: len(webhook_sink.received("/hook")) >= 2, what="a refusal and a retry")
    assert len(aws.sent_emails()) == 1
    webhook_sink.refusing = False
    running.wait_idle()

    assert {request.json()["event_id"] for request in webhook_sink.received("/hook")} == {1}
    assert running.outcomes() == [("retried.jpg", "alert")]
    assert notifications(running) == {"email": True, "webhook": True}
    assert len(aws.sent_emails()) == 1
    assert aws.rekognition.calls == 1  # the retries did not pay for the picture again


def test_its_secrets_stay_out_of_the_log_and_the_check_config_output(
    run_service, aws: Moto, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    aws.rekognition.labels = [PERSON]
    webhook_sink.refusing = True
    settings = webhook(webhook_sink, f"/api/webhook/{HOOK_ID}", headers={"Authorization": TOKEN})
    running = run_service(webhook=settings)
    upload(running.address, "cam01", PERSON_JPEG, "secret.jpg")
    wait_until(lambda: len(webhook_sink.received(f"/api/webhook/{HOOK_ID}")) >= 2, what="retries")
    logged = (tmp_path / "data" / "ipcam_analysis.log").read_text(encoding="utf-8")
    assert f"webhook: http://{webhook_sink.host}:{webhook_sink.port}/****: answered 500" in logged

    shown = check_config(tmp_path, aws, webhook=settings)
    assert shown.returncode == 0, shown.stderr
    assert "Authorization: '****'" in shown.stdout
    for secret in ("Hook-T0ken-5521", HOOK_ID):
        assert secret not in logged
        assert secret not in shown.stdout + shown.stderr


def test_a_camera_can_turn_the_global_webhook_off(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            base_config(
                tmp_path,
                webhook={"url": "https://hooks.example.net/everyone"},
                cameras={"cam02": {"webhook": {"url": None}}},
            ),
        )
    )
    assert config.notifier_settings("cam01")["webhook"].switched_on
    assert not config.notifier_settings("cam02")["webhook"].switched_on
