"""The cameras' SMTP server, driven by real clients (smtplib, curl, swaks) over loopback."""

from __future__ import annotations

import base64
import io
import logging
import smtplib
import socket
import ssl
import subprocess
from contextlib import ExitStack
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.aws import Moto
from harness.backends import (
    REFUSED_ROW,
    query_database,
    second_picture_of_a_mail_refused,
    shared_upload_keys,
)
from harness.ftp import CAMERAS
from harness.mail_camera import (
    CAM02_SENDER,
    RunningSmtp,
    camera_mail,
    make_certificate,
)
from harness.service import DATA, PASSWORDS, RunningService, wait_until
from ipcam_analysis.ingest.leftovers import find_leftovers
from ipcam_analysis.ingest.mail import mail_uploads, read_mail
from ipcam_analysis.ingest.throttle import MAX_SESSIONS_PER_IP
from ipcam_analysis.store.uploads import write_new_file

JPEG = (DATA / "darknet_person.jpg").read_bytes()
OTHER_JPEG = (DATA / "skimage_coffee.jpg").read_bytes()
TREE_JPEG = (DATA / "opencv_tree_f0000.jpg").read_bytes()
OUR_LOGGER = "ipcam_analysis.ingest.smtp"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == OUR_LOGGER and r.levelno == logging.WARNING
    ]


def connect(smtp: RunningSmtp) -> smtplib.SMTP:
    client = smtplib.SMTP(*smtp.address, timeout=20)
    client.ehlo("camera")
    return client


def test_auth_login_without_tls_queues_each_picture_as_one_burst(
    start_smtp, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = start_smtp()
    message = camera_mail([("ch1-a.jpg", JPEG), ("ch1-b.jpg", OTHER_JPEG)])
    with connect(smtp) as client:
        client.esmtp_features["auth"] = "LOGIN"  # as cheap cameras do, rather than PLAIN
        client.login("cam01", CAMERAS["cam01"])
        refused = client.send_message(message)
        client.send_message(camera_mail([("again.jpg", JPEG)]))
    assert refused == {}

    first, second, third = smtp.wait_for_uploads(3)
    assert [first.path.read_bytes(), second.path.read_bytes()] == [JPEG, OTHER_JPEG]
    assert {first.camera, first.source, first.remote_ip} == {"cam01", "smtp", "127.0.0.1"}
    assert first.burst_id and first.burst_id == second.burst_id and first.burst_size == 2
    assert third.burst_id is None and third.burst_size == 1
    assert first.note.startswith("Alarm event: Motion Detection\nAlarm Event: Motion Detection")
    assert "Alarm Input Channel: 1" in first.note
    home = smtp.cameras.root_dir / "cam01"
    assert first.home == home and first.remove_when_done
    assert first.original_name.startswith("smtp/") and first.original_name.endswith("ch1-a.jpg")
    # One warning per camera about its password crossing in clear, not one per message.
    cleartext = [m for m in warnings(caplog) if "without TLS" in m]
    assert len(cleartext) == 1 and "cam01" in cleartext[0]


def test_auth_plain_with_starttls_and_inline_png(start_smtp, tmp_path: Path, caplog) -> None:
    cert, key = make_certificate(tmp_path)
    smtp = start_smtp(tls={"mode": "optional", "certfile": cert, "keyfile": key})
    png = (DATA / "darknet_person.jpg").read_bytes()  # decoded later: here, the name counts
    with connect(smtp) as client:
        client.starttls(context=ssl._create_unverified_context())
        client.ehlo("camera")
        client.login("cam02", CAMERAS["cam02"])  # smtplib picks PLAIN
        client.send_message(camera_mail([("snap.png", png)], inline=True))
    (upload,) = smtp.wait_for_uploads(1)
    assert upload.camera == "cam02" and upload.original_name.endswith(".png")
    assert not [m for m in warnings(caplog) if "without TLS" in m]


def test_tls_required_refuses_login_in_clear(start_smtp, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    smtp = start_smtp(tls={"mode": "required", "certfile": cert, "keyfile": key})
    with connect(smtp) as client, pytest.raises(smtplib.SMTPException):
        client.login("cam01", CAMERAS["cam01"])
    with connect(smtp) as client:
        client.starttls(context=ssl._create_unverified_context())
        client.ehlo("camera")
        client.login("cam01", CAMERAS["cam01"])
        client.send_message(camera_mail([("a.jpg", JPEG)]))
    assert smtp.wait_for_uploads(1)[0].camera == "cam01"


@pytest.mark.parametrize("tls", [False, True], ids=["clear", "starttls-required"])
def test_curl_sends_a_snapshot(start_smtp, tmp_path: Path, tls: bool) -> None:
    if tls:
        cert, key = make_certificate(tmp_path)
        smtp = start_smtp(tls={"mode": "required", "certfile": cert, "keyfile": key})
    else:
        smtp = start_smtp()
    mail = tmp_path / "mail.eml"
    # Lines end in CRLF on the wire; curl sends the file as it is.
    mail.write_bytes(camera_mail([("curl.jpg", JPEG)]).as_bytes(policy=policy.SMTP))
    host, port = smtp.address
    run = subprocess.run(
        [
            *("curl", "--silent", "--show-error", f"smtp://{host}:{port}"),
            *("--user", f"cam01:{CAMERAS['cam01']}", "--mail-from", "cam01@cameras.example"),
            *("--mail-rcpt", "owner@example.com", "--upload-file", str(mail)),
            *(("--ssl-reqd", "--insecure") if tls else ()),  # STARTTLS, self-signed
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    (upload,) = smtp.wait_for_uploads(1)
    assert upload.path.read_bytes() == JPEG


def test_swaks_without_login_from_a_listed_sender(start_smtp, tmp_path: Path) -> None:
    smtp = start_smtp()
    picture = tmp_path / "snapshot.jpg"  # sent as application/octet-stream: known by its name
    picture.write_bytes(JPEG)
    host, port = smtp.address
    run = subprocess.run(
        [
            *("swaks", "--server", host, "--port", str(port), "--from", CAM02_SENDER.upper()),
            *("--to", "owner@example.com", "--attach", f"@{picture}", "--body", "Motion on ch 2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout
    (upload,) = smtp.wait_for_uploads(1)
    assert upload.camera == "cam02" and upload.path.read_bytes() == JPEG
    assert "Motion on ch 2" in upload.note


def test_unknown_sender_without_login_is_refused_at_mail_from(start_smtp, caplog) -> None:
    smtp = start_smtp()
    with connect(smtp) as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.send_message(camera_mail([("a.jpg", JPEG)], sender="spammer@example.net"))
    assert refused.value.smtp_code == 550
    assert any("spammer@example.net" in m and "127.0.0.1" in m for m in warnings(caplog))
    assert smtp.uploads == []


@pytest.mark.parametrize("camera", ["cam01", "nobody"], ids=["wrong-password", "unknown-camera"])
def test_bad_login_is_535_after_the_throttle(start_smtp, caplog, camera: str) -> None:
    smtp = start_smtp()
    with connect(smtp) as client, pytest.raises(smtplib.SMTPAuthenticationError) as failed:
        client.login(camera, "not-the-password")
    assert failed.value.smtp_code == 535
    assert f"Failed SMTP login as {camera!r} from 127.0.0.1 (1 in a row)" in warnings(caplog)
    assert "not-the-password" not in caplog.text


def test_oversize_message_is_552_and_nothing_is_queued(start_smtp, caplog) -> None:
    smtp = start_smtp(max_message_mb=0.05)
    big = camera_mail([("big.jpg", JPEG * 4)])
    with connect(smtp) as client:
        client.login("cam01", CAMERAS["cam01"])
        # smtplib announces the size, as most cameras' mailers do; a raw client does not.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(big)
        assert refused.value.smtp_code == 552
        client.rset()
        client.mail("cam01@cameras.example")
        client.rcpt("owner@example.com")
        code, _ = client.data(big.as_bytes(policy=policy.SMTP))
    assert code == 552
    refusals = [m for m in warnings(caplog) if "max_message_mb" in m]
    assert len(refusals) == 2 and all("cam01 (127.0.0.1)" in m for m in refusals)
    assert smtp.uploads == []


def test_message_without_a_picture_is_one_connection_test_upload(start_smtp) -> None:
    smtp = start_smtp()
    pdf = ("report.pdf", "application/pdf", b"%PDF-1.4 not a picture")
    with connect(smtp) as client:
        client.login("cam01", CAMERAS["cam01"])
        client.send_message(camera_mail(subject="Test e-mail", text="SMTP test", other=[pdf]))
    (upload,) = smtp.wait_for_uploads(1)
    assert upload.original_name.endswith("message.txt")
    assert upload.path.read_text() == upload.note == "Test e-mail\nSMTP test"


def test_a_failing_queue_answers_451(start_smtp, caplog) -> None:
    smtp = start_smtp()
    smtp.fail_with = OSError("database or disk is full")
    with connect(smtp) as client:
        client.login("cam01", CAMERAS["cam01"])
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(camera_mail([("a.jpg", JPEG)]))
    assert refused.value.smtp_code == 451
    assert "Could not queue the upload from cam01 (127.0.0.1): smtp/" in caplog.text
    assert smtp.uploads == [] and not list((smtp.cameras.root_dir / "cam01").rglob("*.jpg"))


def test_message_cut_off_mid_data_queues_nothing(start_smtp, caplog) -> None:
    smtp = start_smtp()
    raw = camera_mail([("a.jpg", JPEG)]).as_bytes()
    with socket.create_connection(smtp.address, timeout=20) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220")
        for command in (
            b"EHLO camera",
            b"AUTH PLAIN " + base64.b64encode(b"\0cam01\0" + CAMERAS["cam01"].encode()),
            b"MAIL FROM:<cam01@cameras.example>",
            b"RCPT TO:<owner@example.com>",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            line = replies.readline()
            while line[3:4] == b"-":
                line = replies.readline()
            assert line[:1] in (b"2", b"3"), line
        sock.sendall(raw[: len(raw) // 2])
        sock.shutdown(socket.SHUT_RDWR)  # the reader made by makefile() keeps it open otherwise
    wait_until(
        lambda: any("cut off" in m for m in warnings(caplog)), 20, "the cut-off to be logged"
    )
    assert any("cam01 (127.0.0.1)" in m for m in warnings(caplog) if "cut off" in m)
    assert smtp.uploads == []
    assert not (smtp.cameras.root_dir / "cam01" / "smtp").exists()


def test_a_flood_of_connections_gets_421_and_the_server_keeps_serving(start_smtp) -> None:
    smtp = start_smtp()
    with ExitStack() as stack:
        greetings = []
        for _ in range(MAX_SESSIONS_PER_IP + 5):
            sock = stack.enter_context(socket.create_connection(smtp.address, timeout=20))
            greetings.append(sock.makefile("rb").readline()[:3])
        assert greetings.count(b"220") == MAX_SESSIONS_PER_IP
        assert greetings.count(b"421") == 5

    # The flood is over: its sessions are released and a camera gets through.
    def sends() -> bool:
        try:
            with connect(smtp) as client:
                client.login("cam01", CAMERAS["cam01"])
                client.send_message(camera_mail([("a.jpg", JPEG)]))
        except smtplib.SMTPException:
            return False
        return True

    wait_until(sends, 20, "a camera to get through after the flood")
    assert smtp.wait_for_uploads(1)[0].camera == "cam01"


def test_read_mail_decodes_subjects_html_bodies_and_pictures_named_as_octet_streams() -> None:
    raw = (
        b"From: cam@x\r\nTo: o@x\r\nSubject: =?UTF-8?B?QmV3ZWd1bmcgS2FuYWwgMiDDvA==?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/html; charset=no-such-charset\r\n\r\n"
        b"<p>Alarm <b>Channel 2</b></p>\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=CH2.JPG\r\n"
        b'Content-Disposition: attachment; filename="../../CH2 snap.JPG"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(JPEG[:64]) + b"\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=log.bin\r\n\r\nxx\r\n--B--\r\n"
    )
    mail = read_mail(io.BytesIO(raw))
    assert mail.note == "Bewegung Kanal 2 ü\nAlarm Channel 2"
    (picture,) = mail.pictures
    assert picture.name == "1-CH2_snap.jpg" and picture.data == JPEG[:64]


def test_pictures_left_by_a_crash_are_found_again_as_one_burst(tmp_path: Path) -> None:
    """What a process killed between writing a message's pictures and queueing them leaves."""
    pair = read_mail(io.BytesIO(camera_mail([("a.jpg", JPEG), ("b.jpg", OTHER_JPEG)]).as_bytes()))
    single = read_mail(io.BytesIO(camera_mail([("c.jpg", JPEG)]).as_bytes()))
    home = tmp_path / "ftp" / "cam01"
    now = datetime.now().astimezone()
    pictures = mail_uploads(pair, "cam01", home, "192.0.2.7", now)
    for received in [*pictures, *mail_uploads(single, "cam01", home, "192.0.2.7", now)]:
        write_new_file(received.upload.path, received.data)
    written = [received.upload for received in pictures]
    found = list(find_leftovers(tmp_path / "ftp", ["cam01"], set()))
    for left in found:
        assert left.source == "smtp" and left.original_name.startswith("smtp/")
    burst = [left for left in found if left.burst_id == written[0].burst_id]
    assert [left.path for left in burst] == [upload.path for upload in written]
    assert {left.burst_size for left in burst} == {2} and burst[0].path.read_bytes() == JPEG
    (alone,) = (left for left in found if left not in burst)
    assert alone.burst_id is None and alone.burst_size == 1


def send_to_service(service: RunningService, message: EmailMessage) -> None:
    """As a camera does: log in, send, quit."""
    with smtplib.SMTP(*service.service.sources["smtp"].address, timeout=30) as client:
        client.login("cam01", PASSWORDS["cam01"])
        client.send_message(message)


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_a_mail_refused_part_way_queues_none_of_its_pictures_and_its_resend_is_one_burst(
    run_service, aws: Moto, tmp_path: Path, caplog
) -> None:
    smtp_server = {"enabled": True, "host": "127.0.0.1", "port": 0}
    service = run_service(smtp_server=smtp_server)
    data_dir = tmp_path / "data"
    message = camera_mail([("a.jpg", JPEG), ("b.jpg", OTHER_JPEG), ("c.jpg", TREE_JPEG)])
    with (
        second_picture_of_a_mail_refused(data_dir),
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        send_to_service(service, message)
    assert refused.value.smtp_code == 451
    assert REFUSED_ROW in caplog.text
    # Nothing of it queued, kept on disk or in shared storage: the camera sends it all again.
    assert query_database(data_dir, "SELECT original_name FROM uploads") == []
    assert files_under(tmp_path / "ftp") == []
    assert shared_upload_keys() == []

    send_to_service(service, message)
    service.wait_idle()
    service.service.stop()
    run_service(smtp_server=smtp_server).wait_idle()  # a restart finds nothing left over
    events = query_database(
        data_dir, "SELECT original_name, burst_id, burst_size FROM events ORDER BY id"
    )
    assert sorted(name.rsplit("-", 1)[-1] for name, _, _ in events) == ["a.jpg", "b.jpg", "c.jpg"]
    assert len({burst for _, burst, _ in events}) == 1
    assert {size for _, _, size in events} == {3}
