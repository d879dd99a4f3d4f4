"""SES sending as an IAM policy sees it: SESv2's SendEmail, and v1's SendRawEmail only where the
policy allows nothing else (moto enforcing IAM)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from email import policy

import pytest

from harness.aws import REGION, Moto
from ipcam_analysis.notify import email as email_module
from ipcam_analysis.notify.email import EmailNotifier, build_alert_email
from ipcam_analysis.notify.ses import SesTransport, wire_bytes
from ipcam_analysis.values import Label, MatchedLabel
from tests.test_notify_email import email_settings, make_alert

FALLBACK_LINE = "sending with SES v1's ses:SendRawEmail instead"


def send_two_alerts(monkeypatch: pytest.MonkeyPatch, credentials: dict[str, str]) -> list[bool]:
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    notifier = EmailNotifier(email_settings("ses"), SesTransport(REGION))
    return [notifier.send(make_alert(camera)).ok for camera in ("front-gate", "back-door")]


def test_ses_sends_with_sesv2_send_email(
    aws: Moto,
    iam_user: Callable[[list[str]], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = iam_user(["ses:SendEmail"])
    with caplog.at_level(logging.WARNING):
        assert send_two_alerts(monkeypatch, credentials) == [True, True]
    mails = aws.sent_emails()
    subjects = " | ".join(str(mail["Subject"]) for mail in mails)
    assert len(mails) == 2 and "front-gate" in subjects and "back-door" in subjects
    assert all(mail["Message-ID"] for mail in mails)
    assert FALLBACK_LINE not in caplog.text


def test_a_policy_allowing_only_send_raw_email_falls_back_to_v1_saying_so_once(
    aws: Moto,
    iam_user: Callable[[list[str]], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = iam_user(["ses:SendRawEmail"])
    with caplog.at_level(logging.WARNING):
        assert send_two_alerts(monkeypatch, credentials) == [True, True]
    assert len(aws.sent_emails()) == 2
    assert caplog.text.count(FALLBACK_LINE) == 1


def test_a_policy_allowing_neither_is_one_permanent_failure(
    aws: Moto,
    iam_user: Callable[[list[str]], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in iam_user(["rekognition:DetectLabels"]).items():
        monkeypatch.setenv(name, value)
    outcome = EmailNotifier(email_settings("ses"), SesTransport(REGION)).send(make_alert())
    assert not outcome.ok
    assert "SES:" in outcome.detail and "SendRawEmail" in outcome.detail
    assert aws.sent_emails() == []


def test_ses_gets_the_bytes_the_standard_generator_makes() -> None:
    """The picture's body is written in one piece, not line by line: the same bytes."""
    person = MatchedLabel(Label("Person", 97.0), "Person")
    settings = email_settings("ses", subject="⚡ $camera: $list " + "long subject " * 8)
    message = build_alert_email(make_alert("Garten-Tür", (person,)), settings)
    assert wire_bytes(message) == message.as_bytes(policy=policy.SMTP)


def test_headers_are_written_as_the_email_package_folds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each header is folded once, when set (notify/mail_policy.py): the alert comes out as
    the email package's own SMTP policy writes it, short and long non-ASCII headers included."""
    monkeypatch.setattr(
        email_module, "format_datetime", lambda _: "Mon, 23 Nov 2026 21:58:03 +0100"
    )
    person = MatchedLabel(Label("Person", 97.0), "Person")
    alerts = [
        (replace(make_alert("Tür", (person,)), event_id=7), "⚡ $camera: $list"),
        (
            replace(make_alert("Garten-Tür " * 5, (person,)), event_id=8),
            "⚡ $camera: " + "Zeile " * 20,
        ),
    ]
    ours = [wire_bytes(build_alert_email(a, email_settings("ses", subject=s))) for a, s in alerts]
    monkeypatch.setattr(email_module, "MAIL_POLICY", policy.SMTP.clone(cte_type="7bit"))
    theirs = [
        build_alert_email(a, email_settings("ses", subject=s)).as_bytes(policy=policy.SMTP)
        for a, s in alerts
    ]
    assert ours == theirs
