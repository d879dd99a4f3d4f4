"""The cameras' SMTP server under a stranger's hand, driven by real clients over loopback."""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import subprocess
import threading
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto
from harness.backends import query_database
from harness.ftp import CAMERAS
from harness.mail_camera import RunningSmtp, camera_mail, make_certificate
from harness.service import (
    DATA,
    PASSWORDS,
    ServiceProcess,
    base_config,
    free_port,
    service_environment,
    wait_until,
    write_config,
)
from ipcam_analysis.ingest.mail import MAX_MULTIPARTS
from ipcam_analysis.ingest.smtp import SPOOL_IN_MEMORY_BYTES
from ipcam_analysis.values import CORRUPT, ERROR, NOT_IMAGE

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


def test_a_big_message_is_received_whole_through_its_spool_file(start_smtp) -> None:
    smtp = start_smtp()
    picture = big_picture(SPOOL_IN_MEMORY_BYTES * 2)
    text = ".a line that starts with a dot\n..and two\n"
    send_as_cam01(smtp, camera_mail([("big.jpg", picture)], text=text))
    (upload,) = smtp.wait_for_uploads(1)
    assert upload.path.read_bytes() == picture
    assert upload.note.endswith(".a line that starts with a dot\n..and two")


def test_a_line_too_long_is_refused_and_the_session_goes_on(start_smtp) -> None:
    smtp = start_smtp()
    with smtplib.SMTP(*smtp.address, timeout=60) as client:
        client.login("cam01", CAMERAS["cam01"])
        long_line = b"Subject: x\r\n\r\n" + b"x" * 5000 + b"\r\n"
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("cam01@cameras.example", ["owner@example.com"], long_line)
        assert refused.value.smtp_code == 500
        client.send_message(camera_mail([("a.jpg", JPEG)]))
    assert len(smtp.wait_for_uploads(1)) == 1


# --- messages held unfinished ----------------------------------------------------------------

MB = 1024 * 1024
HELD_MESSAGES = 20
MESSAGE_BYTES = int(4.9 * MB)
END_OF_DATA = b".\r\n"


def big_picture(size: int) -> bytes:
    """A valid JPEG of about `size` bytes: a snapshot with comment segments (64 kB each)."""
    comment = b"\xff\xfe\xff\xff" + b"c" * 65533
    return JPEG[:2] + comment * (size // len(comment)) + JPEG[2:]


def resident_mb(process: ServiceProcess) -> float:
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def all_sent_is_read(port: int) -> bool:
    """Whether nothing waits in the kernel between the clients and the service: every byte
    sent to `port` is read by the service (both queues empty on each side)."""
    command = ["ss", "-tnH", "state", "established", f"( sport = :{port} or dport = :{port} )"]
    lines = subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)
    queues = [line.split()[:2] for line in lines.stdout.splitlines()]
    return len(queues) == 2 * HELD_MESSAGES and all(q == ["0", "0"] for q in queues)


def send_held_at_the_end(port: int, message: bytes, held: threading.Barrier) -> int:
    """cam01 sends `message` but the final dot, waits for `held`, then ends it: the reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.login("cam01", PASSWORDS["cam01"])
        client.mail("cam01@cameras.example")
        client.rcpt("owner@example.com")
        assert client.docmd("DATA")[0] == 354
        client.send(re.sub(rb"(?m)^\.", b"..", message))  # what smtplib.data() sends, but the dot
        held.wait()
        client.send(END_OF_DATA)
        return client.getreply()[0]


def test_messages_held_unfinished_are_spooled_not_kept_in_memory(
    tmp_path: Path, aws: Moto, service_process: Any
) -> None:
    port = free_port()
    config = base_config(tmp_path, smtp_server={"enabled": True, "host": "127.0.0.1", "port": port})
    env = service_environment(aws)
    process = service_process(["-c", str(write_config(tmp_path, config)), "-n"], env)
    process.address()
    wait_until(lambda: "IP Camera Analysis started" in process.output, what="the start")
    picture = big_picture(MESSAGE_BYTES * 72 // 100)  # base64: 4/3, and line ends
    message = camera_mail([("big.jpg", picture)]).as_bytes(policy=policy.SMTP)
    assert MESSAGE_BYTES - 0.2 * MB < len(message) < MESSAGE_BYTES + 0.2 * MB
    held = threading.Barrier(HELD_MESSAGES + 1)
    replies: list[int] = []

    def camera() -> None:
        replies.append(send_held_at_the_end(port, message, held))

    before = resident_mb(process)
    threads = [threading.Thread(target=camera) for _ in range(HELD_MESSAGES)]
    for thread in threads:
        thread.start()
    wait_until(lambda: held.n_waiting == HELD_MESSAGES, 120, "every message but its end sent")
    wait_until(lambda: all_sent_is_read(port), 60, "the service to read what was sent")
    growth = resident_mb(process) - before
    held.wait()
    for thread in threads:
        thread.join(120)
    # In memory, the messages would be HELD_MESSAGES * MESSAGE_BYTES (98 MB) and more.
    assert growth < HELD_MESSAGES * MESSAGE_BYTES / MB / 2, f"grew {growth:.0f} MB"
    assert replies == [250] * HELD_MESSAGES

    def outcomes() -> list[str] | None:
        rows = query_database(tmp_path / "data", "SELECT state, outcome FROM uploads")
        finished = len(rows) == HELD_MESSAGES and all(state == "done" for state, _ in rows)
        return sorted({outcome for _, outcome in rows}) if finished else None

    decoded = wait_until(outcomes, 120, "the pictures analysed")
    assert not set(decoded) & {NOT_IMAGE, CORRUPT, ERROR}, decoded
