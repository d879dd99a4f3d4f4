"""Endurance: a storm of cameras against a slow cloud, held by the queue's back-pressure."""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.endurance import (
    MB,
    FixedLatencyDetector,
    PeakMemory,
    StartService,
    integrity,
    jpeg_bytes,
    load_ended,
    load_result,
    run_load,
)
from harness.ftp import login_with_ftplib
from harness.service import PASSWORDS, wait_until
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.handoff import Refusal

ADMISSION_LOGGER = "ipcam_analysis.ingest.admission"

# The issue asks for 60 s; the suite runs 30 s (IPCAM_STORM_SECONDS=60 for the full length).
STORM_SECONDS = float(os.environ.get("IPCAM_STORM_SECONDS", "30"))
STORM_CAMERAS = 50
CLOUD_LATENCY_SECONDS = 1.0
WORKERS = 16
# Small enough to be reached within seconds and drained within a bounded wait.
MAX_QUEUED = 300
REFUSAL_PAUSE_SECONDS = 0.0  # as fast as they can, even when refused
PROBE_EVERY_SECONDS = 1.0  # another camera logs in about this often during the storm
MAX_RSS_GROWTH = 256 * MB


def test_storm_of_50_cameras_loses_nothing_and_logins_stay_prompt(
    run_service: StartService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ADMISSION_LOGGER)
    cameras = {f"storm{n:02d}": f"pw-storm{n:02d}-secret" for n in range(STORM_CAMERAS)}
    # The analysis waits until the queue is full, so that the refusing is reached however
    # slowly this machine takes uploads in; then it drains while the storm goes on.
    queue_full = threading.Event()
    running = run_service(
        lambda kind: FixedLatencyDetector(kind, CLOUD_LATENCY_SECONDS, gate=queue_full),
        workers=WORKERS,
        ftp_server={"users": {**PASSWORDS, **cameras}, "max_queued_uploads": MAX_QUEUED},
    )
    service, (host, port) = running.service, running.address
    payload = tmp_path / "snapshot.jpg"
    payload.write_bytes(jpeg_bytes())
    memory = PeakMemory()
    # The cameras run in a second process: in this one they would compete for the GIL with
    # the FTP thread they are meant to load. Each has its own address (all of 127/8 is
    # loopback), as real cameras do, so the limit of 20 sessions per address does not apply.
    spec = {
        "host": host,
        "port": port,
        "seconds": STORM_SECONDS,
        "payload": str(payload),
        "pause_after_refusal": REFUSAL_PAUSE_SECONDS,
        "cameras": [
            {"name": name, "password": password, "source_ip": f"127.0.1.{number + 1}"}
            for number, (name, password) in enumerate(cameras.items())
        ],
    }
    load = run_load("ftp-storm", spec, tmp_path)

    # A camera on another address logs in now and then during the storm.
    logins: list[float] = []
    depths: list[int] = []
    wait_until(lambda: service.queue.depth() > 0, 60, "the storm to start")
    while not load_ended(load, PROBE_EVERY_SECONDS):  # until the storm is over
        started = time.monotonic()
        with login_with_ftplib(host, port, "cam01", PASSWORDS["cam01"]):
            logins.append(time.monotonic() - started)  # a figure for the report, not a test
        depths.append(service.queue.depth())
        if service.intake.admission.refusing:
            queue_full.set()
    queue_full.set()
    seen = load_result(load, timeout=STORM_SECONDS + 90)
    storm_ended = time.monotonic()
    running.wait_idle(timeout=120)
    drained_seconds = time.monotonic() - storm_ended
    growth = memory.stop()

    replies = Counter(seen["replies"])
    assert seen["errors"] == {}
    assert replies["226"] > MAX_QUEUED  # more than one queue's worth went through
    assert replies["452"] > 0  # and the rest were refused, not dropped
    assert set(replies) <= {"226", "452"}
    # Nothing lost: every upload answered 226 is an event, and nothing else is.
    events = service.database.query("SELECT camera, original_name, outcome FROM events")
    recorded = Counter((row["camera"], row["original_name"]) for row in events)
    answered = Counter((name, file) for name, files in seen["accepted"].items() for file in files)
    assert recorded == answered
    assert {row["outcome"] for row in events} == {"no_match"}
    # The limit is checked as a transfer starts: those already under way may each add one.
    assert max(depths) <= MAX_QUEUED + STORM_CAMERAS
    # Logins kept being answered (a refused one raises above); how fast is bench/'s business.
    assert len(logins) >= 3
    assert growth < MAX_RSS_GROWTH
    assert integrity(service) == "ok"
    # One WARNING when the refusing starts and one INFO when it ends, per episode.
    wait_until(lambda: not service.intake.admission.refusing, 10, "the end of the refusing")
    episodes = [
        record.levelname
        for record in caplog.records
        if record.name == ADMISSION_LOGGER and "uploads" in record.getMessage()
    ]
    assert episodes[0] == "WARNING" and episodes[-1] == "INFO"
    assert episodes == ["WARNING", "INFO"] * (len(episodes) // 2)
    assert len(episodes) // 2 < replies["452"] / 10

    print(
        f"\nstorm: {STORM_CAMERAS} cameras, {STORM_SECONDS:.0f} s, cloud {CLOUD_LATENCY_SECONDS} s,"
        f" {WORKERS} workers, max_queued_uploads {MAX_QUEUED}: {replies['226']} accepted,"
        f" {replies['452']} refused (452), {len(episodes) // 2} refusing episode(s);"
        f" deepest queue {max(depths)}; drained in {drained_seconds:.1f} s;"
        f" login median {statistics.median(logins) * 1000:.0f} ms,"
        f" max {max(logins) * 1000:.0f} ms over {len(logins)};"
        f" RSS {memory.baseline / MB:.0f} MB -> peak {memory.peak / MB:.0f} MB"
    )


# --- the admission rules, without a server


class FakeDepth:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_refusing_starts_at_the_limit_and_ends_with_room_to_spare(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ADMISSION_LOGGER)
    depth = FakeDepth()
    admission = UploadAdmission(100, depth, 0, [tmp_path])

    depth.value = 99
    assert admission.refusal() is None
    depth.value = 100
    assert admission.refusal() is Refusal.QUEUE_FULL
    depth.value = 91  # below the limit, but not yet 10 % below it
    assert admission.refusal() is Refusal.QUEUE_FULL
    depth.value = 89
    assert admission.refusal() is None

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Refusing uploads: 100 uploads wait for analysis"
            " (ftp_server.max_queued_uploads: 100); cameras are told to try again later",
        ),
        ("INFO", "Accepting uploads again, after refusing 2 in 0 s"),
    ]


def test_free_space_below_the_minimum_refuses_uploads(tmp_path: Path) -> None:
    free_mb = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize / MB
    assert UploadAdmission(10, lambda: 0, free_mb / 2, [tmp_path]).refusal() is None
    assert UploadAdmission(10, lambda: 0, free_mb * 2, [tmp_path]).refusal() is Refusal.DISK_FULL
