"""A full disk: uploads are refused cleanly, nothing queued is harmed, and work resumes after."""

from __future__ import annotations

import ftplib
import logging
import threading
from pathlib import Path

import pytest

from tests.support.endurance import (
    MB,
    FixedLatencyDetector,
    StartService,
    fill_up,
    integrity,
    jpeg_bytes,
    small_filesystem,
)
from tests.support.ftp import CAMERAS, StartFtp, upload_with_ftplib
from tests.support.service import RunningService, upload, wait_until

SNAPSHOT = jpeg_bytes(padding=400_000)  # a 4 MB disk holds a handful
MAX_UPLOADS = 40  # bounds each upload loop; the disk is full long before


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


def test_full_disk_refuses_uploads_keeps_the_queue_and_resumes(
    run_service: StartService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ipcam_analysis")
    gate = threading.Event()  # holds the analysis until the disk is full
    with small_filesystem(tmp_path / "small", size_mb=8) as disk:
        running = run_service(
            lambda kind: FixedLatencyDetector(kind, gate=gate),
            data_dir=str(disk / "data"),
            ftp_server={"root_dir": str(disk / "ftp"), "min_free_mb": 1},
        )
        service, home = running.service, disk / "ftp" / "cam01"
        # Something else takes most of the disk (a log, a backup)...
        other = fill_up(disk, leave_bytes=3 * MB)

        accepted, refusal = upload_until_refused(running)
        assert refusal.startswith("452 Insufficient storage")
        assert len(accepted) >= 3
        assert files_in(home) == set(accepted)  # no part of the refused upload
        # ...then the last byte, so that the database cannot grow either.
        last = fill_up(disk)
        gate.set()
        wait_until(
            lambda: "database or disk is full" in caplog.text,
            30,
            "the workers to hit the full disk",
        )
        assert integrity(service) == "ok"
        assert all(thread.is_alive() for thread in service.analysis.workers._threads)

        other.unlink()
        last.unlink()
        running.wait_idle(timeout=90)
        assert sorted(event_names(running)) == accepted
        assert integrity(service) == "ok"
        upload(running.address, "cam02", SNAPSHOT, "after.jpg")
        running.wait_idle(timeout=30)
        assert event_names(running)[-1] == "after.jpg"

    refusing = [r.getMessage() for r in caplog.records if r.name.endswith("admission")]
    assert len(refusing) == 2
    assert refusing[0].startswith("Refusing uploads: ")
    assert "MB free on" in refusing[0]
    assert refusing[1].startswith("Accepting uploads again, after refusing 1 in ")


def test_disk_filling_during_a_transfer_fails_it_and_leaves_no_part(
    run_service: StartService, tmp_path: Path
) -> None:
    gate = threading.Event()
    with small_filesystem(tmp_path / "small", size_mb=4) as disk:
        running = run_service(
            lambda kind: FixedLatencyDetector(kind, gate=gate),
            data_dir=str(tmp_path / "data"),
            ftp_server={"root_dir": str(disk / "ftp"), "min_free_mb": 0},  # no early refusal
        )
        home = disk / "ftp" / "cam01"
        upload(running.address, "cam01", SNAPSHOT, "first.jpg")
        filler = fill_up(disk, leave_bytes=100_000)

        with pytest.raises(ftplib.error_temp, match=r"^4\d\d "):
            upload(running.address, "cam01", SNAPSHOT, "too-big.jpg")
        assert files_in(home) == {"first.jpg"}

        filler.unlink()
        upload(running.address, "cam01", SNAPSHOT, "second.jpg")
        gate.set()
        running.wait_idle(timeout=30)
        assert event_names(running) == ["first.jpg", "second.jpg"]


def test_an_upload_the_queue_cannot_record_is_kept_and_queued_later(
    run_service: StartService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ipcam_analysis")
    with small_filesystem(tmp_path / "small", size_mb=4) as disk:
        running = run_service(
            lambda kind: FixedLatencyDetector(kind),
            data_dir=str(disk / "data"),
            ftp_server={"root_dir": str(tmp_path / "ftp"), "min_free_mb": 0},
        )
        upload(running.address, "cam01", SNAPSHOT, "first.jpg")
        running.wait_idle(timeout=30)
        filler = fill_up(disk)

        # No 226 without the row: the camera is told to try again; the file is kept meanwhile.
        with pytest.raises(ftplib.error_temp, match=r"^451 The upload could not be queued"):
            upload(running.address, "cam01", SNAPSHOT, "unqueued.jpg")
        assert "Could not queue the upload" in caplog.text
        assert (tmp_path / "ftp" / "cam01" / "unqueued.jpg").is_file()

        filler.unlink()
        upload(running.address, "cam02", SNAPSHOT, "later.jpg")
        running.wait_idle(timeout=30)
        assert event_names(running) == ["first.jpg", "later.jpg", "unqueued.jpg"]
        assert integrity(running.service) == "ok"


def test_min_free_mb_refuses_before_any_byte_is_written(start_ftp: StartFtp) -> None:
    # Needs no mount: no disk has a million megabytes free.
    running = start_ftp(min_free_mb=1_000_000)
    with pytest.raises(ftplib.error_temp, match=r"^452 Insufficient storage"):
        upload_with_ftplib(running.host, running.port, "cam01", CAMERAS["cam01"], "a.jpg", b"1")
    assert files_in(running.settings.root_dir) == set()
    assert running.uploads == []
