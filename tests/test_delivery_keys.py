"""Each alert carries a key stable across attempts, so a copy sent again is recognisable."""

from __future__ import annotations

from dataclasses import replace

from harness.smtp import SmtpSink
from harness.webhook import WebhookSink
from ipcam_analysis.notify.email import EmailNotifier, build_alert_email
from ipcam_analysis.notify.smtp import SmtpTransport
from tests.test_notify_apprise import only_notifier
from tests.test_notify_email import email_settings, make_alert, smtp_config


def test_an_alert_email_built_again_has_the_same_message_id() -> None:
    alert = replace(make_alert("Front gate ⚡"), event_id=42)
    settings = email_settings("ses")

    first, again = (build_alert_email(alert, settings) for _ in range(2))
    other = build_alert_email(replace(alert, event_id=43), settings)

    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] == "<ipcam-analysis.event-42.Front-gate-.20261123215803@example.com>"
    assert other["Message-ID"] != first["Message-ID"]


def test_an_alert_without_an_event_gets_a_new_message_id_each_time() -> None:
    alert, settings = make_alert(), email_settings("ses")
    first, again = (build_alert_email(alert, settings)["Message-ID"] for _ in range(2))
    assert first != again and first.endswith("@example.com>")


def test_a_server_that_answers_quit_badly_after_its_250_still_counts_as_delivered(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.quit_reply = "421 4.3.2 Shutting down"
    config = smtp_config(smtp_sink.port)
    notifier = EmailNotifier(email_settings("smtp", smtp=config), SmtpTransport(config))

    outcome = notifier.send(replace(make_alert(), event_id=7))

    assert outcome.ok, outcome.detail  # not a failure, which the queue would send again
    (mail,) = smtp_sink.messages
    assert mail["Message-ID"].startswith("<ipcam-analysis.event-7.")
    assert smtp_sink.quits == 1


def test_the_webhook_body_names_the_event(webhook_sink: WebhookSink) -> None:
    only_notifier(webhook_sink.url("/hook")).send(replace(make_alert(), event_id=42))
    (request,) = webhook_sink.received("/hook")
    assert request.json()["message"].splitlines()[-1] == "Event 42"
