"""No acknowledgement before the queue row, for the sources tests/test_ingest_window.py leaves out:
FTPS (its data channel closes with a TLS shutdown) and SMTP (the 250 after DATA). While another
program holds the database's write lock, the camera gets no answer; once the row is committed,
it does."""

from __future__ import annotations

import ftplib
import smtplib
import ssl
import threading
from pathlib import Path

import pytest
import trustme

from harness.backends import query_database, shared_upload_keys, write_lock_held
from harness.endurance import FixedLatencyDetector, StartService, jpeg_bytes
from harness.mail_camera import camera_mail
from harness.service import PASSWORDS, RunningService, wait_until
from tests.test_ingest_window import logged, nothing_to_read

SNAPSHOT = jpeg_bytes()


def queued_names(data_dir: Path) -> list[str]:
    return [row[0] for row in query_database(data_dir, "SELECT original_name FROM uploads")]


def picture_kept(home: Path) -> bool:
    """Whether held.jpg is written here, or with shared storage sent there."""
    kept = [*map(str, home.rglob("*")), *shared_upload_keys()]
    return any(name.endswith("held.jpg") for name in kept)


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ftps_service(
    run_service: StartService, tmp_path: Path, authority: trustme.CA, caplog
) -> RunningService:
    caplog.set_level("INFO", logger="ipcam_analysis")
    issued = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(certfile)
    issued.private_key_pem.write_to_path(keyfile)
    tls = {"mode": "required", "certfile": str(certfile), "keyfile": str(keyfile)}
    return run_service(lambda kind: FixedLatencyDetector(kind), ftp_server={"tls": tls})


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_no_ftps_226_before_the_upload_is_queued(
    ftps_service: RunningService, authority: trustme.CA, caplog, passive: bool
) -> None:
    data_dir = ftps_service.service.config.data_dir
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with ftplib.FTP_TLS(context=context) as ftp:
        ftp.connect(*ftps_service.address, timeout=60)
        ftp.login("cam01", PASSWORDS["cam01"])
        ftp.prot_p()
        ftp.set_pasv(passive)
        ftp.voidcmd("TYPE I")
        with write_lock_held(data_dir):
            data = ftp.transfercmd("STOR held.jpg")
            data.sendall(SNAPSHOT)
            # The TLS shutdown waits for the server's side of it: in a thread, as ftplib's own
            # storbinary would block here.
            closing = threading.Thread(target=lambda: data.unwrap().close(), daemon=True)
            closing.start()
            wait_until(lambda: logged(caplog, "Upload from cam01"), 30, "the server to take it")
            assert nothing_to_read(ftp.sock), "a reply came before the row was committed"
            assert queued_names(data_dir) == []
        assert ftp.voidresp().startswith("226")
        closing.join(30)
        assert queued_names(data_dir) == ["held.jpg"]


def test_no_smtp_250_before_the_pictures_are_queued(run_service: StartService) -> None:
    smtp = {"enabled": True, "host": "127.0.0.1", "port": 0}
    service = run_service(lambda kind: FixedLatencyDetector(kind), smtp_server=smtp)
    config = service.service.config
    home = config.ftp_server.root_dir / "cam01"
    message = camera_mail([("held.jpg", SNAPSHOT)]).as_bytes()
    client = smtplib.SMTP(*service.service.sources["smtp"].address, timeout=60)
    try:  # not `with`: its QUIT would read an early reply and hide what went wrong
        client.login("cam01", PASSWORDS["cam01"])
        client.mail("cam01@cameras.example")
        client.rcpt("owner@example.com")
        with write_lock_held(config.data_dir):
            assert client.docmd("DATA")[0] == 354
            client.send(message.replace(b"\n", b"\r\n") + b"\r\n.\r\n")
            wait_until(lambda: picture_kept(home), 30, "the picture to be kept")
            assert nothing_to_read(client.sock), "a reply came before the row was committed"
            assert queued_names(config.data_dir) == []
        code, reply = client.getreply()
    finally:
        client.close()
    assert code == 250, reply
    [name] = queued_names(config.data_dir)
    assert name.endswith("held.jpg")
