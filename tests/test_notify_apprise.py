"""Apprise URLs delivering to a real JSON webhook and a real SMTP server, failures included."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness.smtp import SmtpSink, free_port
from harness.webhook import FAILING_PATH, WebhookSink
from ipcam_analysis.config import AppConfig, ConfigError, load_config
from ipcam_analysis.notify import (
    AppriseConfig,
    NotifierContext,
    build_apprise_notifiers,
    build_notifiers,
)
from ipcam_analysis.notify.apprise import AppriseNotifier
from ipcam_analysis.values import NotifyOutcome
from tests.test_notify_email import make_alert

WEBHOOK_PASSWORD = "Hook-S3cret-7781"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
MAIL_FROM = "cameras@example.com"
MAIL_TO = "alice@example.com"
VALID_URL = "json://127.0.0.1:8123/valid"  # never called: the config is only loaded


def only_notifier(url: str) -> AppriseNotifier:
    (notifier,) = build_apprise_notifiers(AppriseConfig([url]), NotifierContext(()))
    return notifier


def mail_url(sink: SmtpSink) -> str:
    # mailto:// (not mailtos://) talks plain SMTP, which the loopback sink expects.
    return f"mailto://{sink.host}:{sink.port}?from={MAIL_FROM}&to={MAIL_TO}"


def test_webhook_receives_title_body_and_the_annotated_snapshot(webhook_sink: WebhookSink) -> None:
    alert = make_alert()
    notifier = only_notifier(webhook_sink.url("/hook"))

    outcome = notifier.send(alert)

    target = f"json://{webhook_sink.host}:{webhook_sink.port}/hook"
    assert outcome == NotifyOutcome("apprise:json", ok=True, detail=f"sent to {target}")
    (request,) = webhook_sink.received("/hook")
    payload = request.json()
    assert payload["title"] == "front-gate: Person, Horse"
    assert payload["message"] == "Camera front-gate at 2026-11-23 21:58:03\nPerson 99%, Horse 88%"
    (attachment,) = payload["attachments"]
    assert attachment["mimetype"] == "image/jpeg"
    assert attachment["filename"] == "front-gate_2026-11-23_21-58-03.jpg"
    assert base64.b64decode(attachment["base64"]) == alert.annotated_jpeg


def test_mail_carries_the_snapshot_as_an_attachment(smtp_sink: SmtpSink) -> None:
    alert = make_alert()

    outcome = only_notifier(mail_url(smtp_sink)).send(alert)

    assert outcome.ok and outcome.notifier == "apprise:mailto", outcome.detail
    (mail,) = smtp_sink.received
    assert mail.recipients == [MAIL_TO]
    assert mail.message["Subject"] == "front-gate: Person, Horse"
    assert "Person 99%" in mail.message.get_body(("plain",)).get_content()
    images = [part for part in mail.message.walk() if part.get_content_type() == "image/jpeg"]
    assert [image.get_content() for image in images] == [alert.annotated_jpeg]


def test_webhook_error_is_a_retryable_failure_that_hides_the_password(
    webhook_sink: WebhookSink,
) -> None:
    url = webhook_sink.url(FAILING_PATH, login=f"camera:{WEBHOOK_PASSWORD}")

    outcome = only_notifier(url).send(make_alert())

    assert (outcome.ok, outcome.retry) == (False, True)
    assert "error=500" in outcome.detail
    assert f"camera:****@{webhook_sink.host}" in outcome.detail
    assert WEBHOOK_PASSWORD not in outcome.detail
    (request,) = webhook_sink.received(FAILING_PATH)
    assert request.json()["attachments"], "the snapshot was sent before the server failed"


def test_unreachable_webhook_is_a_retryable_failure() -> None:
    outcome = only_notifier(f"json://127.0.0.1:{free_port()}/hook").send(make_alert())

    assert (outcome.ok, outcome.retry) == (False, True)
    assert "connection error" in outcome.detail.lower()


def test_each_url_is_a_notifier_with_a_unique_stable_name(webhook_sink: WebhookSink) -> None:
    urls = [webhook_sink.url("/a"), f"tgram://{TELEGRAM_TOKEN}/-1001234", webhook_sink.url("/b")]

    notifiers = build_apprise_notifiers(AppriseConfig(urls), NotifierContext(()))
    names = [notifier.name for notifier in notifiers]

    assert names == ["apprise:json", "apprise:tgram", "apprise:json#2"]


def test_one_failing_notifier_does_not_stop_the_others(
    webhook_sink: WebhookSink, smtp_sink: SmtpSink
) -> None:
    config = AppConfig.model_validate(
        {
            "notify": [
                webhook_sink.url(FAILING_PATH),
                webhook_sink.url("/ok"),
                mail_url(smtp_sink),
            ],
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "timeout_seconds": 1},
        }
    )
    by_camera = {"cam01": config.notifier_settings("cam01")}
    notifiers = build_notifiers(by_camera, config.notifier_context)["cam01"]
    for notifier in notifiers:
        notifier.start()
    try:
        outcomes = {notifier.name: notifier.send(make_alert()) for notifier in notifiers}
    finally:
        for notifier in notifiers:
            notifier.close()

    assert {name: outcome.ok for name, outcome in outcomes.items()} == {
        "apprise:json": False,
        "apprise:json#2": True,
        "apprise:mailto": True,
        "mqtt": False,
    }
    assert outcomes["mqtt"].retry and outcomes["apprise:json"].retry
    assert len(webhook_sink.received("/ok")) == 1
    assert len(smtp_sink.received) == 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("telegram me please", "must be an Apprise URL such as tgram://"),
        ("nosuchservice://host/path", "Apprise cannot use this nosuchservice:// URL"),
        ("tgram://not-a-token", "Apprise cannot use this tgram:// URL"),
    ],
)
def test_config_rejects_urls_apprise_cannot_use(tmp_path: Path, url: str, problem: str) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f'notify:\n  - "{VALID_URL}"\n  - "{url}"\n')

    with pytest.raises(ConfigError) as error:
        load_config(config_file)

    assert f"notify[1]: {problem}" in str(error.value)
    assert "not-a-token" not in str(error.value)


def test_secret_parts_of_urls_reach_the_log_filter() -> None:
    config = AppConfig.model_validate(
        {
            "notify": [
                f"json://camera:{WEBHOOK_PASSWORD}@127.0.0.1:8123/hook",
                f"tgram://{TELEGRAM_TOKEN}/-1001234",
                "ntfys://front-door-alerts",
            ]
        }
    )

    secrets = config.secrets()

    assert WEBHOOK_PASSWORD in secrets
    assert TELEGRAM_TOKEN in secrets
    assert "127.0.0.1" not in secrets and "hook" not in secrets
