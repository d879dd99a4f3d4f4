"""What bench/side_by_side.py observes of one timed load: the alerts and their latency, the CPU
time used and waited for (the system, moto, the cameras, the machine's other users), ours' queue
and its own timing of the cloud calls, and optionally a py-spy profile."""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.camera_load import Load
from bench.moto_mail import Mail

QUEUE_SAMPLE_SECONDS = 0.05
PROFILE_RATE = 200  # py-spy samples per second


@dataclass
class Observed:
    """One timed load: the uploads, the alert e-mails, the CPU time used and waited for (the
    system, moto, the whole machine), and ours' queue."""

    load: Load
    alerts: list[Mail]
    cpu: dict[str, float]
    queue: list[tuple[float, tuple[int, int]]]  # (monotonic time, (pending, working))

    @property
    def seconds(self) -> float:
        return max(m.recorded for m in self.alerts) - self.load.started if self.alerts else 0.0

    def figures(self) -> dict[str, Any]:
        seconds = self.seconds or float("nan")
        count = max(1, len(self.alerts))
        return {
            "accepted": self.load.accepted,
            "alerts": len(self.alerts),
            "seconds": round(self.seconds, 3),
            "alerts_per_second": round(len(self.alerts) / seconds, 2) if self.alerts else 0.0,
            "latency_ms": common.percentiles(latencies_ms(self.load, self.alerts)),
            # The original answers 226 only once its one thread takes the upload: the camera
            # waits before the 226, not after it. From the upload's start, both waits count.
            "latency_from_start_ms": common.percentiles(
                latencies_ms(self.load, self.alerts, from_start=True)
            ),
            "email_kb": round(statistics.median(m.size for m in self.alerts) / 1024, 1)
            if self.alerts
            else None,
            "cores": round(self.cpu["on_cpu"] / seconds, 2),
            "cpu_ms_per_alert": round(self.cpu["on_cpu"] * 1000 / count),
            "cpu_wait_ms_per_alert": round(self.cpu["waiting"] * 1000 / count),
            "moto_cores": round(self.cpu["moto_on_cpu"] / seconds, 2),
            "machine_busy_share": round(self.cpu["machine_busy"], 2),
            # What the rest of the machine used meanwhile: other users of this shared VM (the
            # two clocks' rounding can take a few hundredths below zero: that is none).
            "others_cores": max(
                0.0,
                round(
                    self.cpu["machine_busy"] * (os.cpu_count() or 1)
                    - (self.cpu["on_cpu"] + self.cpu["moto_on_cpu"] + self.cpu["bench_on_cpu"])
                    / seconds,
                    2,
                ),
            ),
            "errors": self.load.errors[:5],
        }


def observe(
    pid: int,
    moto_pid: int,
    run: Callable[[], tuple[Load, list[Mail]]],
    database: Path | None = None,
    profile: Path | None = None,
) -> Observed:
    """`run()` (the cameras' load, its e-mails awaited) while the CPU is measured; with
    `database`, ours' queue sampled meanwhile; with `profile`, the system's processes sampled
    by py-spy into that file."""

    def queue_now() -> tuple[float, tuple[int, int]] | None:
        if database is None:
            return None
        states = common.upload_states(database)
        return time.monotonic(), (states.get("pending", 0), states.get("working", 0))

    before = cpu_readings(pid, moto_pid)
    with profiled(pid, profile), common.Sampler(queue_now, QUEUE_SAMPLE_SECONDS) as queue:
        load, alerts = run()
    after = cpu_readings(pid, moto_pid)
    used = {key: after[key] - before[key] for key in before}
    used["machine_busy"] = used.pop("machine_busy_ticks") / max(1, used.pop("machine_ticks"))
    samples = [value for _, value in queue.samples if value is not None]
    return Observed(load, alerts, used, samples)


def latencies_ms(load: Load, alerts: list[Mail], *, from_start: bool = False) -> list[float]:
    """Per camera, its k-th 226 (with `from_start`: the k-th upload's start) → its k-th alert
    e-mail, both in time order (e-mails carry no upload name)."""
    mails: dict[str, list[float]] = defaultdict(list)
    for mail in alerts:
        mails[mail.camera].append(mail.recorded)
    latencies = []
    for camera, times in load.times.items():
        begun = sorted(start if from_start else accepted for start, accepted in times)
        latencies += [
            (sent - at) * 1000 for at, sent in zip(begun, sorted(mails[camera]), strict=False)
        ]
    return latencies


def cpu_readings(pid: int, moto_pid: int) -> dict[str, float]:
    """CPU seconds so far: the system's (on a core, waiting for one), moto's, this process's
    (the cameras), and the machine's busy and total ticks."""
    on_cpu, waiting = common.tree_cpu_seconds(pid)
    busy, total = common.machine_cpu_ticks()
    return {
        "on_cpu": on_cpu,
        "waiting": waiting,
        "moto_on_cpu": common.tree_cpu_seconds(moto_pid)[0],
        "bench_on_cpu": common.process_cpu_seconds(os.getpid()),  # the cameras' threads
        "machine_busy_ticks": busy,
        "machine_ticks": total,
    }


@contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy sampling the process and its children while on a CPU (not waiting), without
    pausing them, until the block ends."""
    if output is None:
        yield
        return
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
    command += ["--subprocesses", "--threads", "--nonblocking", "--rate", str(PROFILE_RATE)]
    command += ["--format", "raw", "--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on the way out
        spy.wait(60)


def workers_busy(observed: Observed, workers: int) -> dict[str, Any]:
    """Over the timed window: the most and the mean uploads in analysis at once, the share of
    the window in which every worker was busy while uploads waited, and (Little's law: mean in
    analysis / alerts per second) how long one upload took in a worker."""
    end = max((m.recorded for m in observed.alerts), default=0.0)
    window = [value for at, value in observed.queue if observed.load.started <= at <= end]
    if not window or not observed.alerts:
        return {"workers": workers}
    saturated = [1 for pending, working in window if pending and working >= workers]
    mean_working = statistics.fmean(working for _, working in window)
    return {
        "workers": workers,
        "most_at_once": max(working for _, working in window),
        "mean_at_once": round(mean_working, 1),
        "all_busy_uploads_waiting_share": round(len(saturated) / len(window), 2),
        "seconds_per_upload_in_a_worker": round(
            mean_working * observed.seconds / len(observed.alerts), 3
        ),
    }


def cloud_call_times(database: Path | None, uploads: int) -> list[float]:
    """Ours' own timing of each DetectLabels call of the timed load (names numbered below
    `uploads`; the warm-up's come after), from its event history."""
    if database is None:
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute("SELECT original_name, detector_ms FROM events").fetchall()
    return [
        float(ms)
        for name, ms in rows
        if ms is not None and int(Path(name).stem.rsplit("-", 1)[1]) < uploads
    ]
