"""Real cameras' habits, each replayed with the commands the firmware sends: Dahua's ALLO,
Reolink's FTP test, Hikvision's and Dahua's file names, STARTTLS, and TLS 1.0/1.1 only."""

from __future__ import annotations

import ftplib
import io
import logging
import re
import smtplib
import ssl
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto
from harness.ftp import CAMERAS, WAIT_SECONDS, RunningFtp, StartFtp
from harness.mail_camera import camera_mail, make_certificate
from harness.service import DATA, PASSWORDS, upload, wait_until
from ipcam_analysis.ingest.tls import TlsConfig
from tests.test_sources_service import api, person

JPEG = (DATA / "darknet_person.jpg").read_bytes()
HIKVISION_NAME = "192.168.1.64_01_20261206153012345_MOTION_DETECTION.jpg"
DAHUA_PATH = "IPC-HDW2431/2026-12-06/001/jpg/15/30/12[M][0@0][0].jpg"
REOLINK_TEST_FOLDER = "camera_test20261206153012"


def test_dahua_allo_before_stor_is_answered_200(ftp_ingest: RunningFtp) -> None:
    # Dahua and Empire Tech cameras hang up on "202" and start over, forever.
    with ftp_ingest.login("cam01") as session:
        for folder in DAHUA_PATH.split("/")[:-1]:
            session.mkd(folder)
            session.cwd(folder)
        session.voidcmd("TYPE I")
        assert session.sendcmd(f"ALLO {len(JPEG)}").startswith("200 ")
        name = DAHUA_PATH.rsplit("/", 1)[-1]
        assert session.storbinary(f"STOR {name}", io.BytesIO(JPEG)).startswith("226")
    (received,) = ftp_ingest.wait_for_uploads(1)
    assert received.original_name == DAHUA_PATH
    assert (
        received.note == "Motion detection on channel 1, taken 2026-12-06 15:30:12 (camera's clock)"
    )


def reolink_test(ftp: RunningFtp, *, remove: bool) -> None:
    """Reolink's "Test" button, as its firmware does it even with no folder set (the first
    three commands as published in svrooij/ipcam2mqtt#14): look for a folder named after the
    time, make it, enter it, leave it (and remove it, on firmwares that do)."""
    with ftp.login("cam01") as session:
        for path in (f"//{REOLINK_TEST_FOLDER}", REOLINK_TEST_FOLDER):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                session.cwd(path)
        assert session.mkd(REOLINK_TEST_FOLDER) == f"/{REOLINK_TEST_FOLDER}"
        assert session.cwd(REOLINK_TEST_FOLDER).startswith("250")
        assert session.cwd("/").startswith("250")
        if remove:
            assert session.rmd(REOLINK_TEST_FOLDER).startswith("250")


@pytest.mark.parametrize("remove", [True, False], ids=["camera-removes", "camera-leaves"])
def test_reolink_s_ftp_test_passes_and_leaves_no_folder_behind(
    ftp_ingest: RunningFtp, remove: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "ipcam_analysis.ingest.ftp")
    reolink_test(ftp_ingest, remove=remove)
    home = ftp_ingest.home("cam01")
    wait_until(lambda: not (home / REOLINK_TEST_FOLDER).exists(), WAIT_SECONDS, "the test folder")
    assert f"Camera cam01 (127.0.0.1) runs its FTP test: folder /{REOLINK_TEST_FOLDER} made" in (
        caplog.messages
    )
    # Then the motion snapshots go to the root, whatever the test did.
    with ftp_ingest.login("cam01") as session:
        session.storbinary("STOR Front_00_20261206153100.jpg", io.BytesIO(JPEG))
    (received,) = ftp_ingest.wait_for_uploads(1)
    assert (received.original_name, received.note) == ("Front_00_20261206153100.jpg", "")


def test_a_picture_sent_with_reolink_s_test_is_noted_as_the_test(ftp_ingest: RunningFtp) -> None:
    with ftp_ingest.login("cam01") as session:
        session.mkd(REOLINK_TEST_FOLDER)
        session.cwd(REOLINK_TEST_FOLDER)
        session.storbinary("STOR test.jpg", io.BytesIO(JPEG))
        # Not empty: refused, and the file stays queued.
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            session.rmd(f"/{REOLINK_TEST_FOLDER}")
    (received,) = ftp_ingest.wait_for_uploads(1)
    assert received.original_name == f"{REOLINK_TEST_FOLDER}/test.jpg"
    assert received.note == "The camera's FTP test (Reolink's test folder)"
    assert received.path.read_bytes() == JPEG


def test_deleting_a_file_stays_refused(start_ftp: StartFtp) -> None:
    ftp = start_ftp(remove_files=False)
    with ftp.login("cam01") as session:
        session.storbinary("STOR kept.jpg", io.BytesIO(JPEG))
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            session.delete("kept.jpg")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            session.rmd("kept.jpg")
    assert (ftp.home("cam01") / "kept.jpg").read_bytes() == JPEG


def test_hikvision_and_dahua_names_show_their_event_on_the_dashboard(
    run_service, aws: Moto, tmp_path: Path
) -> None:
    aws.rekognition.labels = [person(97.0)]
    service = run_service()
    host, port = service.address
    picture = tmp_path / "snapshot.jpg"
    picture.write_bytes(JPEG)
    # Many Linux cameras upload with busybox's ftpput: to the root, with the camera's name.
    run = subprocess.run(
        [
            *("busybox", "ftpput", "-u", "cam01", "-p", PASSWORDS["cam01"], "-P", str(port)),
            *(host, HIKVISION_NAME, str(picture)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    upload(service.address, "cam02", JPEG, DAHUA_PATH)
    service.wait_idle()

    events = {event["original_name"]: event for event in api(service, "/api/events")["events"]}
    hikvision, dahua = events[HIKVISION_NAME], events[DAHUA_PATH]
    assert (hikvision["outcome"], dahua["outcome"]) == ("alert", "alert")
    assert hikvision["note"] == (
        "Motion detection on channel 1, taken 2026-12-06 15:30:12.345 (camera's clock)"
    )
    assert dahua["note"].startswith("Motion detection on channel 1, taken 2026-12-06 15:30:12")
    page = api(service, f"/events/{hikvision['id']}")
    assert "Motion detection on channel 1, taken 2026-12-06 15:30:12.345" in page


def test_a_certificate_makes_the_smtp_server_offer_starttls(start_smtp, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    smtp = start_smtp(tls={"certfile": cert, "keyfile": key})  # no mode written
    with smtplib.SMTP(*smtp.address, timeout=WAIT_SECONDS) as client:
        # A camera that speaks only when STARTTLS is offered: EHLO, STARTTLS, EHLO, AUTH LOGIN.
        client.ehlo("IPC")
        assert client.has_extn("starttls")
        client.starttls(context=ssl._create_unverified_context())
        client.ehlo("IPC")
        client.esmtp_features["auth"] = "LOGIN"
        client.login("cam01", CAMERAS["cam01"])
        assert client.send_message(camera_mail([("tls.jpg", JPEG)])) == {}
    (received,) = smtp.wait_for_uploads(1)
    assert received.path.read_bytes() == JPEG


def s_client(port: int, starttls: str, version_flag: str) -> str:
    """openssl s_client's handshake as an old camera does it; the cipher agreed on, or "(NONE)".
    Debian's OpenSSL refuses TLS below 1.2 at its default security level, on the client side
    too: the camera's side of the test needs @SECLEVEL=0."""
    run = subprocess.run(
        [
            *("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", starttls),
            *(version_flag, "-cipher", "DEFAULT:@SECLEVEL=0"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Cipher is (\S+)", run.stdout)
    return found.group(1) if found else "(NONE)"


def old_camera_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that speaks nothing newer than `version`, as an old camera's TLS stack."""
    context = ssl._create_unverified_context()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = version
    return context


def tls_files(tmp_path: Path, **settings: Any) -> TlsConfig:
    cert, key = make_certificate(tmp_path)
    return TlsConfig(certfile=cert, keyfile=key, **settings)


def test_ftps_refuses_tls_1_1_by_default(start_ftp: StartFtp, tmp_path: Path, caplog) -> None:
    ftp = start_ftp(tls=tls_files(tmp_path))
    assert s_client(ftp.port, "ftp", "-tls1_1") == "(NONE)"
    assert not [m for m in caplog.messages if "tls.min_version" in m]


def test_ftps_takes_a_tls_1_1_camera_when_allowed(
    start_ftp: StartFtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ftp = start_ftp(tls=tls_files(tmp_path, min_version="1.1"))
    assert s_client(ftp.port, "ftp", "-tls1_1") != "(NONE)"
    session = ftplib.FTP_TLS(context=old_camera_context(ssl.TLSVersion.TLSv1_1))
    with session:
        session.connect(ftp.host, ftp.port, timeout=WAIT_SECONDS)
        session.login("cam01", CAMERAS["cam01"])
        session.prot_p()
        assert session.sock.version() == "TLSv1.1"
        session.storbinary("STOR old.jpg", io.BytesIO(JPEG))
    (received,) = ftp.wait_for_uploads(1)
    assert (received.original_name, received.source) == ("old.jpg", "ftps")
    assert [m for m in caplog.messages if "tls.min_version" in m] == [
        "The FTP server accepts TLS 1.1 (tls.min_version): its encryption is weak;"
        " raise it to 1.2 once no camera needs it"
    ]


def test_smtp_starttls_takes_a_tls_1_0_camera_only_when_allowed(
    start_smtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = make_certificate(tmp_path)
    default = start_smtp(tls={"certfile": cert, "keyfile": key})
    assert s_client(default.address[1], "smtp", "-tls1") == "(NONE)"
    smtp = start_smtp(
        tls={"certfile": cert, "keyfile": key, "min_version": 1.0}
    )  # as YAML reads it
    assert s_client(smtp.address[1], "smtp", "-tls1") != "(NONE)"
    with smtplib.SMTP(*smtp.address, timeout=WAIT_SECONDS) as client:
        client.starttls(context=old_camera_context(ssl.TLSVersion.TLSv1))
        assert client.sock.version() == "TLSv1"
        client.login("cam02", CAMERAS["cam02"])
        client.send_message(camera_mail([("old.jpg", JPEG)]))
    assert smtp.wait_for_uploads(1)[0].path.read_bytes() == JPEG
    assert "The SMTP server accepts TLS 1.0 (tls.min_version)" in "\n".join(caplog.messages)
