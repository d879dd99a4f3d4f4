"""The cameras' FTP server under a stranger's hand: TLS abuse, driven by openssl s_client."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from harness.ftp import CAMERAS, StartFtp, login_with_ftplib
from harness.mail_camera import make_certificate
from harness.service import wait_until
from ipcam_analysis.ingest.tls import TlsConfig


def test_a_tls_renegotiation_is_one_line_and_the_session_closed(
    start_ftp: StartFtp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = make_certificate(tmp_path)
    ftp = start_ftp(tls=TlsConfig(mode="optional", certfile=cert, keyfile=key))
    # `R` asks s_client to renegotiate once the session is up (TLS 1.2 has renegotiation).
    command = ["openssl", "s_client", "-starttls", "ftp", "-tls1_2"]
    with subprocess.Popen(
        [*command, "-connect", f"{ftp.host}:{ftp.port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as client:
        assert client.stdin is not None and client.stderr is not None
        client.stdin.write(b"R\n")
        client.stdin.flush()
        wait_until(lambda: "TLS error with" in caplog.text, 30, "the renegotiation to be refused")
        client.stdin.close()
        assert b"RENEGOTIATING" in client.stderr.read()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems] == [
        "TLS error with 127.0.0.1: tls alert handshake failure; connection closed"
    ]
    assert problems[0].exc_info is None
    login_with_ftplib(ftp.host, ftp.port, "cam01", CAMERAS["cam01"]).quit()  # still serving
