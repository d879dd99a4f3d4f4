"""No acknowledgement before the queue row: while another connection holds the database's write
lock, a camera gets no 226 (FTP) or 201 (HTTP) until its upload's row is committed."""

from __future__ import annotations

import base64
import ftplib
import select
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.endurance import FixedLatencyDetector, StartService, jpeg_bytes
from harness.service import PASSWORDS, RunningService, wait_until
from ipcam_analysis.store import DATABASE_FILE

SNAPSHOT = jpeg_bytes()


# It stalls the queue by holding the SQLite file's write lock.
pytestmark = pytest.mark.embedded_only


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock (readers still read) until the block ends."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def queued_names(running: RunningService) -> list[str]:
    rows = running.service.database.query("SELECT original_name FROM uploads ORDER BY id")
    return [row[0] for row in rows]


def nothing_to_read(sock: object) -> bool:
    return select.select([sock], [], [], 0)[0] == []


def logged(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


@pytest.fixture
def service(run_service: StartService, caplog: pytest.LogCaptureFixture) -> RunningService:
    caplog.set_level("INFO", logger="ipcam_analysis")
    http = {"enabled": True, "host": "127.0.0.1", "port": 0}
    return run_service(lambda kind: FixedLatencyDetector(kind), http_ingest=http)


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_no_226_before_the_upload_is_queued(
    service: RunningService, caplog: pytest.LogCaptureFixture, passive: bool
) -> None:
    host, port = service.address
    database = service.service.config.data_dir / DATABASE_FILE
    with ftplib.FTP() as ftp:
        ftp.connect(host, port, timeout=60)
        ftp.login("cam01", PASSWORDS["cam01"])
        ftp.set_pasv(passive)
        ftp.voidcmd("TYPE I")
        with write_lock_held(database):
            with ftp.transfercmd("STOR held.jpg") as data:
                data.sendall(SNAPSHOT)
            # The server has the whole file and is writing its row, blocked by the lock.
            wait_until(
                lambda: logged(caplog, "Upload from cam01"), 30, "the server to take the file"
            )
            assert nothing_to_read(ftp.sock), "a reply came before the row was committed"
            assert queued_names(service) == []
        assert ftp.voidresp().startswith("226")
        assert queued_names(service) == ["held.jpg"]


def test_no_201_before_the_upload_is_queued(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = service.service.sources["http"].address
    credentials = base64.b64encode(f"cam01:{PASSWORDS['cam01']}".encode()).decode()
    request = (
        f"POST /upload?name=held.jpg HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
        f"Authorization: Basic {credentials}\r\nContent-Length: {len(SNAPSHOT)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    database = service.service.config.data_dir / DATABASE_FILE
    with socket.create_connection((host, port), timeout=60) as sock:
        with write_lock_held(database):
            sock.sendall(request + SNAPSHOT)
            wait_until(lambda: logged(caplog, "Upload from cam01"), 30, "the server to take it")
            assert nothing_to_read(sock), "an answer came before the row was committed"
            assert queued_names(service) == []
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 201")
    assert queued_names(service) == ["held.jpg"]
    [row] = service.service.database.query("SELECT id FROM uploads")
    assert f'"id":{row[0]}' in answer
