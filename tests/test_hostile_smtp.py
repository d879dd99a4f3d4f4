"""The cameras' SMTP server under a stranger's hand, driven by real clients over loopback."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

import pytest

from harness.ftp import CAMERAS
from harness.mail_camera import RunningSmtp, camera_mail
from harness.service import DATA
from ipcam_analysis.ingest.mail import MAX_MULTIPARTS

JPEG = (DATA / "darknet_person.jpg").read_bytes()


def nested_mail(depth: int) -> bytes:
    """A message of `depth` multiparts, each the only part of the one around it."""
    body = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(depth):
        boundary = f"level{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary
            + b"\r\n" + body + b"--" + boundary + b"--\r\n"
        )  # fmt: skip
    return b"From: cam01@cameras.example\r\nTo: owner@example.com\r\nSubject: deep\r\n" + body


def send_as_cam01(smtp: RunningSmtp, message: bytes | EmailMessage) -> None:
    with smtplib.SMTP(*smtp.address, timeout=60) as client:
        client.login("cam01", CAMERAS["cam01"])
        if isinstance(message, EmailMessage):
            client.send_message(message)
        else:
            client.sendmail("cam01@cameras.example", ["owner@example.com"], message)


@pytest.mark.parametrize("depth", [MAX_MULTIPARTS + 1, 1000])
def test_a_message_nested_beyond_reason_is_refused_for_good(
    start_smtp, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    smtp = start_smtp()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send_as_cam01(smtp, nested_mail(depth))
    assert refused.value.smtp_code == 554  # a 4xx would have the camera send it forever
    assert smtp.uploads == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    refusal = f"E-mail from cam01 (127.0.0.1) refused: more than {MAX_MULTIPARTS} multipart"
    assert [line for line in warnings if "without TLS" not in line] == [refusal + " sections"]
    # A camera's ordinary message, nested a little, still goes through.
    send_as_cam01(smtp, nested_mail(3))
    send_as_cam01(smtp, camera_mail([("a.jpg", JPEG)]))
    assert len(smtp.wait_for_uploads(2)) == 2
