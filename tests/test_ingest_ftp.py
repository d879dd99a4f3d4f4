"""The cameras' FTP server, driven by real clients (ftplib, curl) over loopback."""

from __future__ import annotations

import ftplib
import io
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest

from harness.ftp import (
    CAMERAS,
    WAIT_SECONDS,
    RunningFtp,
    StartFtp,
    login_with_ftplib,
    upload_with_ftplib,
)
from harness.intake import collecting_intake
from ipcam_analysis.ingest.ftp import FtpIngest, FtpIngestError, FtpServerConfig
from ipcam_analysis.ingest.ftp_files import SPOOL_FOLDER
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.store.storage import remove_file_and_empty_folders

XM_PATH = "2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg"
JPEG_BYTES = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
OUR_LOGGER = "ipcam_analysis.ingest.ftp"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUR_LOGGER and r.levelno == level]


# --- uploads from real clients


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
@pytest.mark.parametrize(
    "remote_path",
    [XM_PATH, "snapshots/front door/cam @ 10.23.45.jpg", "plain.jpg"],
    ids=["xm-dahua", "spaces-at", "home"],
)
def test_ftplib_uploads_nested_paths_and_odd_names(
    ftp_ingest: RunningFtp, passive: bool, remote_path: str
) -> None:
    upload_with_ftplib(
        ftp_ingest.host,
        ftp_ingest.port,
        "cam01",
        CAMERAS["cam01"],
        remote_path,
        JPEG_BYTES,
        passive,
    )

    [upload] = ftp_ingest.wait_for_uploads(1)
    assert upload.camera == "cam01"
    assert upload.original_name == remote_path
    sent = ftp_ingest.home("cam01") / remote_path
    # In a folder of its own beside it: the camera's next picture may come under that name.
    assert (upload.path.parent.parent, upload.path.name) == (sent.parent, sent.name)
    assert upload.path.read_bytes() == JPEG_BYTES
    assert upload.remote_ip == "127.0.0.1"
    assert upload.received_at.tzinfo is not None


@pytest.mark.parametrize("mode", [[], ["--ftp-port", "127.0.0.1"]], ids=["passive", "active"])
def test_curl_uploads_with_created_dirs(
    ftp_ingest: RunningFtp, tmp_path: Path, mode: list[str]
) -> None:
    snapshot = tmp_path / "snapshot.jpg"
    snapshot.write_bytes(JPEG_BYTES)
    url = f"ftp://cam02:{CAMERAS['cam02']}@127.0.0.1:{ftp_ingest.port}/{XM_PATH}"

    subprocess.run(
        ["curl", "-sS", "--globoff", "--ftp-create-dirs", "-T", str(snapshot), *mode, url],
        check=True,
        timeout=WAIT_SECONDS,
    )

    [upload] = ftp_ingest.wait_for_uploads(1)
    assert (upload.camera, upload.original_name) == ("cam02", XM_PATH)
    assert upload.path.read_bytes() == JPEG_BYTES


def test_deep_mkd_and_stor_into_missing_folder_create_the_parents(ftp_ingest: RunningFtp) -> None:
    with ftp_ingest.login() as ftp:
        ftp.mkd("2026-11-23/001/jpg/10")
        ftp.cwd("2026-11-23/001/jpg/10")
        ftp.storbinary("STOR 23/45.jpg", io.BytesIO(b"data"))

    [upload] = ftp_ingest.wait_for_uploads(1)
    assert upload.original_name == "2026-11-23/001/jpg/10/23/45.jpg"


def test_probing_commands_are_allowed_and_reading_back_is_not(start_ftp: StartFtp) -> None:
    # Files the user keeps stay under the camera's names (removed ones are queued under their own).
    ftp_ingest = start_ftp(remove_files=False)
    with ftp_ingest.login() as ftp:
        assert ftp.getwelcome() == "220 ipcam_analysis ready"
        ftp.storbinary("STOR probe.jpg", io.BytesIO(JPEG_BYTES))
        assert ftp.pwd() == "/"
        assert ftp.nlst() == ["probe.jpg"]
        listing: list[str] = []
        ftp.retrlines("LIST", listing.append)
        assert "probe.jpg" in listing[0]
        assert [name for name, _ in ftp.mlsd()] == ["probe.jpg"]
        ftp.voidcmd("TYPE I")
        assert ftp.size("probe.jpg") == len(JPEG_BYTES)
        assert ftp.sendcmd("MDTM probe.jpg").startswith("213 ")
        for refused in ("RETR probe.jpg", "DELE probe.jpg", "RNFR probe.jpg", "RMD /"):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                ftp.sendcmd(refused)


def test_a_kept_file_written_again_leaves_the_queued_picture_as_received(
    start_ftp: StartFtp,
) -> None:
    """Without `remove_files`, the user's file keeps the camera's name and its latest bytes,
    whatever a STOR brings, resumed (REST) or not; each queued upload holds what it was sent."""
    ftp_ingest = start_ftp(remove_files=False)
    home = ftp_ingest.home("cam01")
    with ftp_ingest.login() as ftp:
        ftp.storbinary("STOR a.jpg", io.BytesIO(b"first"))
        ftp.voidcmd("TYPE I")
        ftp.storbinary("STOR a.jpg", io.BytesIO(b"+more"), rest=len(b"first"))
        assert (home / "a.jpg").read_bytes() == b"first+more"
        ftp.storbinary("STOR a.jpg", io.BytesIO(b"second"))

    queued = ftp_ingest.wait_for_uploads(3)
    assert [upload.original_name for upload in queued] == ["a.jpg"] * 3
    assert [upload.path.read_bytes() for upload in queued] == [b"first", b"first+more", b"second"]
    assert (home / "a.jpg").read_bytes() == b"second"
    assert [path.name for path in home.iterdir()] == ["a.jpg"]


def test_two_cameras_upload_concurrently(ftp_ingest: RunningFtp) -> None:
    def camera_uploads(camera: str, worker: int) -> None:
        for shot in range(3):
            data = f"{camera}-{worker}-{shot}".encode()
            path = f"2026-11-23/001/jpg/{worker}/{shot}[M].jpg"
            passive = worker % 2 == 0
            upload_with_ftplib(
                ftp_ingest.host, ftp_ingest.port, camera, CAMERAS[camera], path, data, passive
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        sessions = [pool.submit(camera_uploads, c, w) for c in CAMERAS for w in range(4)]
        for session in sessions:
            session.result(timeout=WAIT_SECONDS)

    uploads = ftp_ingest.wait_for_uploads(24)
    contents = {(u.camera, u.original_name): u.path.read_bytes() for u in uploads}
    assert len(contents) == 24
    for (camera, name), data in contents.items():
        worker, shot = name.split("/")[-2], name.split("/")[-1][0]
        assert data == f"{camera}-{worker}-{shot}".encode()


# --- logging


def test_logs_login_and_upload_at_info_and_pyftpdlib_chatter_at_debug(
    ftp_ingest: RunningFtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    upload_with_ftplib(
        ftp_ingest.host, ftp_ingest.port, "cam01", CAMERAS["cam01"], XM_PATH, JPEG_BYTES
    )
    ftp_ingest.wait_for_uploads(1)

    wait_until(lambda: messages(caplog, logging.INFO)[-1:] != [], "the upload log line")
    assert "Camera cam01 logged in from 127.0.0.1" in messages(caplog, logging.INFO)
    assert f"Upload from cam01 (127.0.0.1): {XM_PATH} ({len(JPEG_BYTES)} bytes)" in messages(
        caplog, logging.INFO
    )
    assert [r for r in caplog.records if r.name.startswith("pyftpdlib")] == []


def test_an_upload_the_queue_cannot_take_is_answered_451_and_the_server_carries_on(
    ftp_ingest: RunningFtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ftp_ingest.fail_with = RuntimeError("queue database is locked")
    with pytest.raises(ftplib.error_temp, match=r"^451 The upload could not be queued"):
        upload_with_ftplib(
            ftp_ingest.host, ftp_ingest.port, "cam01", CAMERAS["cam01"], "a.jpg", b"1"
        )

    ftp_ingest.fail_with = None
    upload_with_ftplib(ftp_ingest.host, ftp_ingest.port, "cam01", CAMERAS["cam01"], "b.jpg", b"2")

    # Both were handed to the queue; the first was refused there.
    assert [u.original_name for u in ftp_ingest.wait_for_uploads(2)] == ["a.jpg", "b.jpg"]
    # Not kept: the camera was told to send it again, and a kept copy would be a duplicate.
    home = ftp_ingest.home("cam01")
    assert [path.name for path in home.rglob("*") if path.is_file()] == ["b.jpg"]
    assert len(list(home.iterdir())) == 1  # b.jpg's own folder; a.jpg's went with it
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage() == (
        "Could not queue the upload from cam01 (127.0.0.1): a.jpg (queue database is locked)"
    )
    assert not error.exc_info  # the traceback is for DEBUG only


def test_a_kept_file_the_spool_cannot_take_is_answered_451(
    start_ftp: StartFtp, caplog: pytest.LogCaptureFixture
) -> None:
    ftp_ingest = start_ftp(remove_files=False)
    (ftp_ingest.settings.root_dir / SPOOL_FOLDER).write_bytes(b"")  # not a folder: no spool
    with pytest.raises(ftplib.error_temp, match=r"^451 The upload could not be stored"):
        upload_with_ftplib(
            ftp_ingest.host, ftp_ingest.port, "cam01", CAMERAS["cam01"], "a.jpg", b"1"
        )

    assert ftp_ingest.uploads == []
    assert (ftp_ingest.home("cam01") / "a.jpg").read_bytes() == b"1"  # the user's file stays
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith("Could not queue the upload from cam01 (127.0.0.1): a.jpg (")


# --- authentication and confinement


def test_wrong_password_is_refused_and_logged_without_the_password(
    ftp_ingest: RunningFtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # pyftpdlib's own command log too
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login_with_ftplib(ftp_ingest.host, ftp_ingest.port, "cam01", "not-the-password")
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login_with_ftplib(ftp_ingest.host, ftp_ingest.port, "intruder", CAMERAS["cam02"])
    with ftp_ingest.login("cam02"):
        pass

    wait_until(lambda: len(messages(caplog, logging.WARNING)) == 2, "two failed-login warnings")
    assert messages(caplog, logging.WARNING) == [
        "Failed FTP login as 'cam01' from 127.0.0.1 (1 in a row)",
        "Failed FTP login as 'intruder' from 127.0.0.1 (2 in a row)",
    ]
    for password in ("not-the-password", *CAMERAS.values()):
        assert password not in caplog.text


def test_anonymous_login_is_refused(ftp_ingest: RunningFtp) -> None:
    with ftplib.FTP() as ftp:
        ftp.connect(ftp_ingest.host, ftp_ingest.port, timeout=WAIT_SECONDS)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login()  # anonymous, as the camera's "Anonymous" checkbox would


def test_a_camera_cannot_leave_its_home(ftp_ingest: RunningFtp) -> None:
    root = ftp_ingest.settings.root_dir.resolve()
    home = ftp_ingest.home("cam01")
    with ftp_ingest.login() as ftp:
        for outside in ("..", "/../..", "../cam02"):
            with suppress(ftplib.error_perm):  # refused is as good as staying at "/"
                ftp.cwd(outside)
            assert ftp.pwd() == "/"
        ftp.storbinary("STOR ../../escape.jpg", io.BytesIO(b"x"))
        ftp.mkd("../../evil")
        with pytest.raises(ftplib.error_perm):
            ftp.cwd("/cam02")

    [upload] = ftp_ingest.wait_for_uploads(1)
    assert (upload.path.parent.parent, upload.original_name) == (home, "escape.jpg")
    outside_home = {p for p in root.parent.rglob("*") if home not in (p, *p.parents)}
    assert outside_home == {root, root / "cam02"}


def test_failed_logins_are_answered_later_and_later(start_ftp: StartFtp) -> None:
    throttle = LoginThrottle(first_delay_seconds=0.5, max_delay_seconds=30)
    running = start_ftp(login_throttle=throttle)
    waited = []
    with ftplib.FTP() as ftp:
        ftp.connect(running.host, running.port, timeout=WAIT_SECONDS)
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                ftp.login("cam01", "guess")
            waited.append(time.monotonic() - started)
    assert throttle.failures("127.0.0.1") == 2
    # Lower bounds only: the IO loop never answers before the scheduled delay.
    assert waited[0] >= 0.5
    assert waited[1] >= 1.0

    with running.login():
        pass
    assert throttle.failures("127.0.0.1") == 0


def test_login_throttle_doubles_caps_and_forgets() -> None:
    now = [0.0]
    throttle = LoginThrottle(
        first_delay_seconds=3, max_delay_seconds=30, forget_after_seconds=600, clock=lambda: now[0]
    )
    delays = []
    for _ in range(6):  # each guess once the last was answered
        delays.append(throttle.delay_after_failure("10.0.0.9"))
        now[0] += delays[-1]
    assert delays == [3, 6, 12, 24, 30, 30]
    assert throttle.delay_after_failure("10.0.0.8") == 3  # per IP
    # Guesses side by side are answered one after the other.
    assert [throttle.delay_after_failure("10.0.0.7") for _ in range(3)] == [3, 3 + 6, 3 + 6 + 12]

    now[0] += 601.0
    assert throttle.delay_after_failure("10.0.0.9") == 3  # a quiet period resets it
    throttle.forget("10.0.0.9")
    assert throttle.failures("10.0.0.9") == 0
    assert throttle.failures("10.0.0.8") == 0  # forgotten as stale, too


def test_sessions_per_ip_are_capped(ftp_ingest: RunningFtp) -> None:
    with ExitStack() as stack:
        for _ in range(20):
            ftp = stack.enter_context(ftplib.FTP())
            ftp.connect(ftp_ingest.host, ftp_ingest.port, timeout=WAIT_SECONDS)
        extra = socket.create_connection(ftp_ingest.ingest.address, WAIT_SECONDS)
        with extra:
            assert extra.recv(1024).startswith(b"421 Too many connections")


# --- passive mode settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_passive_ports_and_masquerade_address_are_used(start_ftp: StartFtp) -> None:
    port = free_port()
    running = start_ftp(passive_ports=(port, port), masquerade_address="203.0.113.7")
    with running.login() as ftp:
        assert ftplib.parse227(ftp.sendcmd("PASV")) == ("203.0.113.7", port)

    # ftplib ignores the masqueraded host and uses the port on 127.0.0.1: the range really works.
    upload_with_ftplib(running.host, running.port, "cam01", CAMERAS["cam01"], "a.jpg", b"x")
    running.wait_for_uploads(1)


# --- start-up errors


def test_a_port_in_use_is_a_one_line_error(ftp_ingest: RunningFtp, tmp_path: Path) -> None:
    settings = ftp_ingest.settings.model_copy(update={"port": ftp_ingest.port})
    intake = collecting_intake(ftp_ingest.collect, tmp_path / "data")
    with pytest.raises(FtpIngestError, match=r"cannot listen for FTP on 127\.0\.0\.1:.*in use"):
        FtpIngest(settings, intake).start()


@pytest.mark.parametrize("camera", ["..", "a/b", ""])
def test_a_camera_name_that_is_not_a_folder_name_is_refused(tmp_path: Path, camera: str) -> None:
    settings = FtpServerConfig(root_dir=tmp_path / "ftp", users={camera: "secret-pw"})
    with pytest.raises(FtpIngestError, match="cannot be used as a folder name"):
        FtpIngest(settings, collecting_intake(lambda uploads: [1], tmp_path / "data")).start()
    assert not (tmp_path / "ftp").exists()


# --- interrupted uploads and shutdown


def start_upload(ftp: ftplib.FTP, name: str, data: bytes) -> socket.socket:
    """Begin a STOR, send `data` and return the still-open data socket.

    The server has opened the file once the 125/150 reply came; it buffers what it writes, so
    the file's size on disk says nothing about how much arrived.
    """
    ftp.voidcmd("TYPE I")
    data_socket = ftp.transfercmd(f"STOR {name}")
    data_socket.sendall(data)
    return data_socket


def test_control_connection_lost_mid_upload_deletes_the_partial_file(
    ftp_ingest: RunningFtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    home = ftp_ingest.home("cam01")
    ftp = ftp_ingest.login()
    with start_upload(ftp, "partial.jpg", JPEG_BYTES[:1000]):
        ftp.close()  # the camera loses power: its control connection goes first
        wait_until(lambda: not any(home.iterdir()), "the partial file to go")

    wait_until(lambda: messages(caplog, logging.WARNING) != [], "the partial-upload warning")
    assert messages(caplog, logging.WARNING) == ["Partial upload from cam01 deleted: partial.jpg"]
    assert ftp_ingest.uploads == []


def test_data_connection_closed_early_looks_complete_to_ftp(ftp_ingest: RunningFtp) -> None:
    # FTP stream mode marks the end of a file by closing the data connection, so the server
    # cannot tell a truncated upload from a whole one: the pipeline must decode to find out.
    with ftp_ingest.login() as ftp:
        data_socket = start_upload(ftp, "truncated.jpg", JPEG_BYTES[:1000])
        data_socket.close()
        assert ftp.voidresp().startswith("226")

    [upload] = ftp_ingest.wait_for_uploads(1)
    assert upload.path.read_bytes() == JPEG_BYTES[:1000]


def test_stop_closes_every_session_promptly(start_ftp: StartFtp) -> None:
    throttle = LoginThrottle(first_delay_seconds=30)
    running = start_ftp(login_throttle=throttle)
    home = running.home("cam02")
    with ExitStack() as stack:
        idle = stack.enter_context(running.login("cam01"))
        uploading = stack.enter_context(running.login("cam02"))
        data_socket = stack.enter_context(start_upload(uploading, "p.jpg", b"x" * 100))
        guessing = stack.enter_context(ftplib.FTP())
        guessing.connect(running.host, running.port, timeout=WAIT_SECONDS)
        guessing.sendcmd("USER cam01")
        guessing.putcmd("PASS guess")  # answered only after 30 s
        wait_until(lambda: throttle.failures("127.0.0.1") == 1, "the failed login")

        stopper = threading.Thread(target=running.ingest.stop)
        stopper.start()
        stopper.join(WAIT_SECONDS)
        assert not stopper.is_alive()

        for client in (idle, uploading, guessing):
            with pytest.raises((EOFError, OSError)):
                client.voidcmd("NOOP")
        data_socket.settimeout(WAIT_SECONDS)
        assert data_socket.recv(1) == b""
    assert not (home / "p.jpg").exists()
    assert running.uploads == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((running.host, running.port), timeout=WAIT_SECONDS)


# --- clean-up of uploaded files


def test_removing_an_upload_removes_the_empty_dated_folders_only(tmp_path: Path) -> None:
    home = tmp_path / "cam01"
    upload = home / "2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg"
    sibling = home / "2026-11-23/001/jpg/10/24/01[M][0@0][0].jpg"
    for path in (upload, sibling):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")

    remove_file_and_empty_folders(upload, home)
    assert not (home / "2026-11-23/001/jpg/10/23").exists()
    assert sibling.exists()

    remove_file_and_empty_folders(sibling, home)
    assert home.is_dir()
    assert list(home.iterdir()) == []


def test_removing_an_upload_keeps_the_home_and_accepts_a_missing_file(tmp_path: Path) -> None:
    home = tmp_path / "cam01"
    (home / "empty/dated").mkdir(parents=True)
    remove_file_and_empty_folders(home / "top.jpg", home)
    remove_file_and_empty_folders(home / "empty/dated/gone.jpg", home)
    assert home.is_dir()
    assert list(home.iterdir()) == []


def test_removing_an_upload_never_touches_anything_outside_the_home(tmp_path: Path) -> None:
    home = tmp_path / "cam01"
    home.mkdir()
    outside = tmp_path / "cam02" / "a.jpg"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    for path in (outside, home / ".." / "cam02" / "a.jpg", home):
        with pytest.raises(ValueError, match="not inside"):
            remove_file_and_empty_folders(path, home)
    assert outside.exists()
    assert home.is_dir()
