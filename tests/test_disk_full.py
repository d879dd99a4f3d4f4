"""A full or read-only disk: uploads are refused cleanly, nothing queued is harmed, and work
resumes after; no filesystem is mounted (free space is measured, write errors come from libfiu)."""

from __future__ import annotations

import ftplib
import logging
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from harness.aws import Moto
from harness.endurance import (
    MB,
    FixedLatencyDetector,
    StartService,
    integrity,
    jpeg_bytes,
)
from harness.fiu import DATABASE_WRITES, ERRORS, FaultInjector
from harness.ftp import CAMERAS, StartFtp, upload_with_ftplib
from harness.service import (
    RunningService,
    base_config,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from ipcam_analysis.store import DATABASE_FILE

SNAPSHOT = jpeg_bytes(padding=400_000)
MAX_UPLOADS = 40  # bounds each upload loop; the disk is full long before
SQLITE_MESSAGES = {"full": "database or disk is full", "read-only": "disk I/O error"}
# The disk is "full" when its free space falls this far below what it had at the start: the
# test's own filler takes it there (the machine's disk, shared, no mount needed).
FILLER_MB, MARGIN_MB = 48, 24


# About the SQLite file and the local disk under it.
pytestmark = pytest.mark.embedded_only


def upload_until_refused(running: RunningService) -> tuple[list[str], str]:
    """Upload as cam01 until the server refuses; the names it took and the refusal."""
    accepted: list[str] = []
    for number in range(MAX_UPLOADS):
        name = f"snap{number:02d}.jpg"
        try:
            upload(running.address, "cam01", SNAPSHOT, name)
        except ftplib.error_temp as exc:
            return accepted, str(exc)
        accepted.append(name)
    raise AssertionError(f"{MAX_UPLOADS} uploads and still no refusal")


def files_in(folder: Path) -> set[str]:
    return {path.name for path in folder.rglob("*") if path.is_file()}


def event_names(running: RunningService) -> list[str]:
    rows = running.service.database.query("SELECT original_name FROM events ORDER BY id")
    return [row[0] for row in rows]


def free_mb(folder: Path) -> float:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize / MB


def test_low_free_space_refuses_uploads_and_keeps_the_queue(
    run_service: StartService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ipcam_analysis")
    gate = threading.Event()  # holds the analysis while the disk is full
    (tmp_path / "ftp").mkdir()
    running = run_service(
        lambda kind: FixedLatencyDetector(kind, gate=gate),
        ftp_server={"min_free_mb": free_mb(tmp_path) - MARGIN_MB},
    )
    upload(running.address, "cam01", SNAPSHOT, "before.jpg")
    # Something else takes the disk (a log, a backup)...
    filler = tmp_path / "filler.bin"
    filler.write_bytes(b"\0" * (FILLER_MB * MB))

    accepted, refusal = upload_until_refused(running)
    assert refusal.startswith("452 Insufficient storage")
    refused = f"snap{len(accepted):02d}.jpg"
    assert refused not in files_in(tmp_path / "ftp")  # no part of the refused upload
    assert all(thread.is_alive() for thread in running.service.analysis.workers._threads)

    filler.unlink()
    gate.set()
    running.wait_idle()
    assert event_names(running) == ["before.jpg", *accepted]
    assert integrity(running.service) == "ok"
    # Resuming needs 10 % more than the minimum (unit-tested in test_endurance.py): more than
    # this shared disk can free, so the service is not asked to resume here.
    (refusing,) = [r.getMessage() for r in caplog.records if r.name.endswith("admission")]
    assert refusing.startswith("Refusing uploads: ")
    assert "MB free on" in refusing


def finished_events(database: Path) -> list[str] | None:
    """The events' file names once every queued upload is finished; None before."""
    with closing(sqlite3.connect(database)) as conn:
        busy = conn.execute("SELECT 1 FROM uploads WHERE state != 'done'").fetchall()
        names = [row[0] for row in conn.execute("SELECT original_name FROM events")]
    return None if busy else names


def test_min_free_mb_refuses_before_any_byte_is_written(start_ftp: StartFtp) -> None:
    # Needs no mount: no disk has a million megabytes free.
    running = start_ftp(min_free_mb=1_000_000)
    with pytest.raises(ftplib.error_temp, match=r"^452 Insufficient storage"):
        upload_with_ftplib(running.host, running.port, "cam01", CAMERAS["cam01"], "a.jpg", b"1")
    assert files_in(running.settings.root_dir) == set()
    assert running.uploads == []


@pytest.mark.parametrize("state", ERRORS.keys())
def test_a_database_that_cannot_be_written_loses_no_accepted_upload(
    tmp_path: Path, aws: Moto, service_process, state: str
) -> None:
    """The database's disk becomes full or read-only under the running service (libfiu, no
    mount): it keeps running, refuses what it cannot queue (the camera sends it again), and
    catches up after."""
    faults = FaultInjector(tmp_path / "fiu-ctrl")
    config = write_config(tmp_path, base_config(tmp_path))
    service = service_process(
        ["-c", str(config), "-n"], service_environment(aws), None, faults.wrapper
    )
    address, pid = service.address(), service.process.pid
    database = tmp_path / "data" / DATABASE_FILE
    aws.rekognition.delay_seconds = 2  # a worker is in the cloud when the disk fails
    upload(address, "cam01", SNAPSHOT, "before.jpg")
    wait_until(lambda: aws.rekognition.calls == 1, what="the detector call")

    faults.fail(pid, DATABASE_WRITES, ERRORS[state])
    accepted = ["before.jpg"]
    for number in range(3):
        name = f"during-{number}.jpg"
        try:
            upload(address, "cam02", SNAPSHOT, name)
        except ftplib.Error:
            continue  # refused: the camera sends it again later
        accepted.append(name)
    wait_until(
        lambda: SQLITE_MESSAGES[state] in service.output, what="the service to meet the fault"
    )
    assert service.process.poll() is None
    faults.heal(pid, DATABASE_WRITES)
    upload(address, "cam01", SNAPSHOT, "after.jpg")
    accepted.append("after.jpg")

    recorded = wait_until(lambda: finished_events(database), 120, "every accepted upload's event")
    assert sorted(recorded) == sorted(accepted)  # each exactly once, none lost
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert service.terminate() == 0
