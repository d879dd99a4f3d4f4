"""FTPS (explicit AUTH TLS) on the cameras' FTP port, driven by ftplib, curl and lftp."""

from __future__ import annotations

import ftplib
import io
import logging
import socket
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trustme

from harness.ftp import CAMERAS, WAIT_SECONDS, RunningFtp, StartFtp, login_with_ftplib
from harness.service import base_config, wait_until, write_config
from ipcam_analysis.config import ConfigError, load_config
from ipcam_analysis.ingest.ftp import FtpIngestError
from ipcam_analysis.ingest.tls import TlsCertificateError, TlsConfig, fingerprint

SNAPSHOT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64 + b"\xff\xd9"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(tmp_path: Path, authority: trustme.CA) -> dict[str, Path]:
    """The server's certificate (for 127.0.0.1) and key, and the CA that clients trust."""
    issued = authority.issue_cert("127.0.0.1", "localhost")
    files = {"certfile": tmp_path / "cert.pem", "keyfile": tmp_path / "key.pem"}
    issued.cert_chain_pems[0].write_to_path(files["certfile"])
    issued.private_key_pem.write_to_path(files["keyfile"])
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    return {**files, "ca": tmp_path / "ca.pem"}


def start_ftps(start_ftp: StartFtp, tls_files: dict[str, Path], mode: str) -> RunningFtp:
    files = {"certfile": tls_files["certfile"], "keyfile": tls_files["keyfile"]}
    return start_ftp(tls=TlsConfig(mode=mode, **files))


def ftplib_tls_session(ftp: RunningFtp, ca: Path, camera: str = "cam01") -> ftplib.FTP_TLS:
    session = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(ca)))
    session.connect(ftp.host, ftp.port, timeout=WAIT_SECONDS)
    session.login(camera, CAMERAS[camera])  # AUTH TLS first, as ftplib's FTP_TLS does
    return session


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_ftplib_prot_p_upload_is_recorded_as_ftps(
    start_ftp: StartFtp, tls_files: dict[str, Path], passive: bool
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "required")
    with ftplib_tls_session(ftp, tls_files["ca"]) as session:
        session.prot_p()
        session.set_pasv(passive)
        assert session.storbinary("STOR front.jpg", io.BytesIO(SNAPSHOT)).startswith("226")

    [upload] = ftp.wait_for_uploads(1)
    assert (upload.camera, upload.original_name, upload.source) == ("cam01", "front.jpg", "ftps")
    assert upload.path.read_bytes() == SNAPSHOT


# Passive only: Debian 12's curl 7.88 cannot do active FTPS at all (curl/curl#10666, fixed in
# 8.0); ftplib and lftp cover active mode.
def test_curl_ssl_reqd_uploads_with_the_ca(
    start_ftp: StartFtp, tls_files: dict[str, Path], tmp_path: Path
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "required")
    picture = tmp_path / "snap.jpg"
    picture.write_bytes(SNAPSHOT)
    command = ["curl", "-sS", "--ssl-reqd", "--cacert", str(tls_files["ca"]), "--ftp-create-dirs"]
    url = f"ftp://127.0.0.1:{ftp.port}/2026-12-03/001/snap.jpg"
    user = f"cam02:{CAMERAS['cam02']}"
    subprocess.run([*command, "-u", user, "-T", str(picture), url], check=True, timeout=60)

    [upload] = ftp.wait_for_uploads(1)
    assert (upload.camera, upload.original_name, upload.source) == (
        "cam02",
        "2026-12-03/001/snap.jpg",
        "ftps",
    )
    assert upload.path.read_bytes() == SNAPSHOT


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_lftp_with_ssl_force_uploads(
    start_ftp: StartFtp, tls_files: dict[str, Path], tmp_path: Path, passive: bool
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "required")
    picture = tmp_path / "lftp.jpg"
    picture.write_bytes(SNAPSHOT)
    script = (
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
        f"set ssl:ca-file {tls_files['ca']}; set net:max-retries 1; "
        f"set ftp:passive-mode {str(passive).lower()}; set ftp:port-ipv4 127.0.0.1; "
        f"put {picture} -o lftp.jpg; bye"
    )
    subprocess.run(
        ["lftp", "-u", f"cam01,{CAMERAS['cam01']}", "-e", script, f"ftp://127.0.0.1:{ftp.port}"],
        check=True,
        timeout=60,
    )

    [upload] = ftp.wait_for_uploads(1)
    assert (upload.original_name, upload.source) == ("lftp.jpg", "ftps")
    assert upload.path.read_bytes() == SNAPSHOT


def test_required_refuses_a_login_and_a_transfer_in_clear(
    start_ftp: StartFtp, tls_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "required")
    with pytest.raises(ftplib.error_perm, match="550 SSL/TLS required on the control channel"):
        login_with_ftplib(ftp.host, ftp.port, "cam01", CAMERAS["cam01"]).close()

    refused = pytest.raises(ftplib.error_perm, match="550 SSL/TLS required on the data channel")
    with ftplib_tls_session(ftp, tls_files["ca"]) as session, refused:  # data not protected
        session.storbinary("STOR clear.jpg", io.BytesIO(SNAPSHOT))
    assert ftp.uploads == []
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "FTP login as cam01 from 127.0.0.1 refused: TLS is required",
        "FTP transfer by cam01 from 127.0.0.1 refused: the data channel is not protected (PROT P)",
    ]


def test_optional_takes_both_and_records_which(
    start_ftp: StartFtp, tls_files: dict[str, Path]
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "optional")
    with login_with_ftplib(ftp.host, ftp.port, "cam01", CAMERAS["cam01"]) as clear:
        clear.storbinary("STOR clear.jpg", io.BytesIO(SNAPSHOT))
    with ftplib_tls_session(ftp, tls_files["ca"], "cam02") as session:
        session.prot_p()
        session.storbinary("STOR private.jpg", io.BytesIO(SNAPSHOT))

    uploads = ftp.wait_for_uploads(2)
    assert sorted((u.original_name, u.source) for u in uploads) == [
        ("clear.jpg", "ftp"),
        ("private.jpg", "ftps"),
    ]


def test_without_a_certificate_one_is_made_once_and_its_fingerprint_logged(
    start_ftp: StartFtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ipcam_analysis")
    folder = tmp_path / "data" / "tls"
    first = start_ftp(tls=TlsConfig(mode="optional"), tls_dir=folder)
    [certificate] = folder.glob("*cert*.pem")
    [key] = folder.glob("*key*.pem")
    made = certificate.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"SHA-256 fingerprint {fingerprint(certificate)}" in caplog.text
    first.ingest.stop()

    second = start_ftp(tls=TlsConfig(mode="optional"), tls_dir=folder)
    assert certificate.read_bytes() == made
    picture = tmp_path / "self.jpg"
    picture.write_bytes(SNAPSHOT)
    url = f"ftp://127.0.0.1:{second.port}/self.jpg"
    user = f"cam01:{CAMERAS['cam01']}"
    # -k: a self-signed certificate is checked by its fingerprint, not by a CA.
    subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "-k", "-u", user, "-T", str(picture), url],
        check=True,
        timeout=60,
    )
    [upload] = second.wait_for_uploads(1)
    assert upload.source == "ftps"


def test_a_certificate_that_does_not_match_its_key_stops_the_start(
    start_ftp: StartFtp, tls_files: dict[str, Path], authority: trustme.CA, tmp_path: Path
) -> None:
    other_key = tmp_path / "other-key.pem"
    authority.issue_cert("127.0.0.1").private_key_pem.write_to_path(other_key)
    settings = TlsConfig(mode="required", certfile=tls_files["certfile"], keyfile=other_key)
    with pytest.raises(FtpIngestError, match=r"cannot use the FTP TLS certificate .*cert\.pem"):
        start_ftp(tls=settings)
    missing = TlsConfig(mode="required", certfile=tmp_path / "missing.pem")
    with pytest.raises(
        TlsCertificateError, match=r"cannot read the TLS certificate .*missing\.pem"
    ):
        start_ftp(tls=missing)


def test_config_resolves_the_certificate_and_puts_a_made_one_in_data_dir(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["ftp_server"]["tls"] = {"mode": "optional", "certfile": "certs/ftp.pem"}
    loaded = load_config(write_config(tmp_path, config))
    assert loaded.ftp_server.tls.certfile == tmp_path / "certs" / "ftp.pem"
    assert loaded.tls_dir == tmp_path / "data" / "tls"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"http_ingest": {"users": {"cam01": "x"}}}, "unknown key 'http_ingest.users'"),
        ({"ftp_server": {"tls": {"self_signed_dir": "x"}}}, "unknown key 'ftp_server.tls.self_"),
    ],
)
def test_keys_filled_from_elsewhere_are_refused(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    config = base_config(tmp_path, **section)
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, config))


def test_a_failed_tls_handshake_is_logged_and_the_server_carries_on(
    start_ftp: StartFtp, tls_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    ftp = start_ftps(start_ftp, tls_files, "optional")
    with socket.create_connection((ftp.host, ftp.port), timeout=WAIT_SECONDS) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220")
        sock.sendall(b"AUTH TLS\r\n")
        assert replies.readline().startswith(b"234")
        sock.sendall(b"this is not a TLS client hello\r\n" * 8)
        wait_until(lambda: "TLS handshake with 127.0.0.1 failed" in caplog.text)

    with ftplib_tls_session(ftp, tls_files["ca"]) as session:
        session.prot_p()
        session.storbinary("STOR after.jpg", io.BytesIO(SNAPSHOT))
    assert [u.original_name for u in ftp.wait_for_uploads(1)] == ["after.jpg"]
