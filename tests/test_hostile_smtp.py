"""The cameras' SMTP server under a stranger's hand, driven by real clients over loopback."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from contextlib import ExitStack
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.ftp import CAMERAS
from harness.mail_camera import RunningSmtp, camera_mail, make_certificate
from harness.service import DATA, wait_until
from ipcam_analysis.ingest.mail import MAX_MULTIPARTS
from ipcam_analysis.ingest.throttle import MAX_SESSIONS, MAX_SESSIONS_PER_IP

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


def greeting(smtp: RunningSmtp, source: str, stack: ExitStack) -> bytes:
    """The first line a new connection from `source` hears; the connection is kept open."""
    sock = stack.enter_context(
        socket.create_connection(smtp.address, timeout=30, source_address=(source, 0))
    )
    return sock.makefile("rb").readline()


def test_a_full_server_says_it_is_busy_not_that_the_address_has_too_many(start_smtp) -> None:
    smtp = start_smtp()
    addresses = [f"127.0.0.{host}" for host in range(10, 23)]  # 13, each under its own cap
    with ExitStack() as stack:
        greetings = [
            greeting(smtp, address, stack)
            for address in addresses
            for _ in range(MAX_SESSIONS_PER_IP)
        ]
    refusals = [line for line in greetings if not line.startswith(b"220")]
    assert len(refusals) == len(addresses) * MAX_SESSIONS_PER_IP - MAX_SESSIONS
    assert set(refusals) == {
        b"421 4.3.2 The server is busy (too many connections); try again later\r\n"
    }


def test_a_failed_starttls_is_one_line_and_the_server_carries_on(
    start_smtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = make_certificate(tmp_path)
    smtp = start_smtp(tls={"mode": "optional", "certfile": cert, "keyfile": key})
    with socket.create_connection(smtp.address, timeout=30) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220")
        sock.sendall(b"EHLO camera\r\n")
        while replies.readline()[3:4] == b"-":
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert replies.readline().startswith(b"220")
        sock.sendall(b"\x16\x03\x01\x00\x05not a TLS hello at all\r\n")
        assert replies.read() == b""  # closed
    wait_until(lambda: "STARTTLS with 127.0.0.1 failed" in caplog.text, 20, "the log line")
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems] == [
        "STARTTLS with 127.0.0.1 failed: unexpected message"
    ]
    assert all(r.exc_info is None for r in problems)
    with smtplib.SMTP(*smtp.address, timeout=30) as client:
        client.starttls(context=ssl._create_unverified_context())
        client.login("cam01", CAMERAS["cam01"])
        client.send_message(camera_mail([("a.jpg", JPEG)]))
    assert smtp.wait_for_uploads(1)[0].camera == "cam01"
