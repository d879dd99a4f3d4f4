#!/usr/bin/env python3
"""CPU milliseconds per alert in our process, by stage: 4 cameras upload N snapshots each over
real FTP (child processes), the service runs in this process with its default settings, the
fake cloud is moto in its own process (DetectLabels answers a person, SES takes the e-mail).

Each stage is timed with the CPU clock of the thread that runs it (`time.thread_time`), by
wrapping the functions that do it; a stage called inside another counts for itself only, so
the stages add up. Whatever no wrapper covers (the FTP listener's IO loop, logging, the worker
loop) is "ingest and the rest": the process's CPU time (`getrusage`) minus the stages. Also
counts the SQLite write transactions (BEGIN IMMEDIATE and autocommit statements on the write
connection) per alert.

    .venv/bin/python bench/alert_cpu.py
    .venv/bin/python bench/alert_cpu.py --uploads 40 --size 1920x1080
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common, side_by_side  # noqa: E402
from bench.moto_mail import moto  # noqa: E402
from ipcam_analysis import pipeline  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402
from ipcam_analysis.detect.rekognition import RekognitionDetector  # noqa: E402
from ipcam_analysis.gates import CameraGates  # noqa: E402
from ipcam_analysis.notify.errors import ErrorReporter  # noqa: E402
from ipcam_analysis.queue import UploadQueue  # noqa: E402
from ipcam_analysis.store import EventStore  # noqa: E402
from ipcam_analysis.store.database import SqliteDatabase  # noqa: E402

REST = "ingest (FTP listener) and the rest"


class StageClock:
    """CPU seconds by stage, each stage's own (what a stage inside it used is that stage's)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.writes = 0  # write transactions and autocommit write statements
        self._lock = threading.Lock()
        self._local = threading.local()

    def timed(self, stage: str | Callable[..., str], function: Callable[..., Any]) -> Any:
        """`function` wrapped; `stage` may name the stage from the call's arguments."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name = stage if isinstance(stage, str) else stage(*args, **kwargs)
            stack: list[float] = self._local.__dict__.setdefault("inner", [])
            stack.append(0.0)
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                inner = stack.pop()
                if stack:
                    stack[-1] += spent
                with self._lock:
                    self.seconds[name] += spent - inner

        return wrapper

    def count_writes(self, function: Callable[..., Any], *, only_outside: bool) -> Any:
        @functools.wraps(function)
        def wrapper(database: Any, *args: Any, **kwargs: Any) -> Any:
            if not (only_outside and database._joined is not None):
                with self._lock:
                    self.writes += 1
            return function(database, *args, **kwargs)

        return wrapper


# (class or module, attribute, stage): what the bench wraps; the service code is unchanged.
STAGES: list[tuple[Any, str, str | Callable[..., str]]] = [
    (UploadQueue, "put_many", "queue"),
    (UploadQueue, "claim", "queue"),
    (UploadQueue, "save_detection", "queue"),
    (UploadQueue, "save_decision", "queue"),
    (UploadQueue, "mark_notified", "queue"),
    (UploadQueue, "finish", "queue"),
    (pipeline, "read_upload", "decode"),
    (pipeline, "decode_snapshot", "decode"),
    (pipeline, "perceptual_hash", "decide (gates, rules)"),
    (CameraGates, "repeated_frame", "decide (gates, rules)"),
    (CameraGates, "reserve_cloud_call", "decide (gates, rules)"),
    (CameraGates, "settle_cloud_calls", "decide (gates, rules)"),
    (pipeline.Pipeline, "_decide", "decide (gates, rules)"),
    (pipeline, "one_name_per_object", "decide (gates, rules)"),
    (RekognitionDetector, "detect", "detect call (boto3 to the fake cloud)"),
    (pipeline, "draw_boxes", "draw + encode"),
    (pipeline, "encode_jpeg", "draw + encode"),
    (pipeline, "_send_safely", lambda notifier, *_: f"channel {notifier.name}"),
    (EventStore, "record", "record (event, pictures)"),
    (EventStore, "keep_pictures", "record (event, pictures)"),
    (ErrorReporter, "clear", "record (event, pictures)"),
    (pipeline.Pipeline, "process", "pipeline, unwrapped parts"),
    (pipeline.Pipeline, "_notify", "pipeline, unwrapped parts"),
]


@contextmanager
def instrumented(clock: StageClock) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in STAGES]
    saved += [(SqliteDatabase, name, getattr(SqliteDatabase, name)) for name in ("_begin",)]
    saved += [(SqliteDatabase, "execute", SqliteDatabase.execute)]
    for owner, name, stage in STAGES:
        setattr(owner, name, clock.timed(stage, getattr(owner, name)))
    SqliteDatabase._begin = clock.count_writes(SqliteDatabase._begin, only_outside=False)
    SqliteDatabase.execute = clock.count_writes(SqliteDatabase.execute, only_outside=True)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace) -> dict[str, Any]:
    picture = common.snapshot_jpeg(common.parse_size(args.size))
    clock = StageClock()
    with (
        moto([side_by_side.label_person()], args.cloud_seconds) as (mail, _moto_pid),
        tempfile.TemporaryDirectory(prefix="alert-cpu-") as folder,
        instrumented(clock),
    ):
        work = Path(folder)
        settings = common.service_settings(
            work, cameras=args.cameras, workers=args.workers, detector={"type": "rekognition"},
            smtp_port=None,
        )  # fmt: skip
        settings["email"] = {
            "sender_email": "sender@example.com",
            "recipients": ["owner@example.com"],
        }
        with common.running_service(settings, work) as service:
            address = service.ftp.address
            cameras = common.cameras(args.cameras)
            load_and_wait(address, cameras, picture, 1, mail)  # warm up
            clock.seconds.clear()
            clock.writes = 0
            cpu_before = process_cpu_seconds()
            alerts = load_and_wait(address, cameras, picture, args.uploads, mail)
            total = process_cpu_seconds() - cpu_before
    stages = dict(clock.seconds)
    stages[REST] = total - sum(stages.values())
    return {
        "alerts": alerts,
        "cpu_ms_per_alert": round(total * 1000 / alerts, 2),
        "writes_per_alert": round(clock.writes / alerts, 2),
        "stages_ms_per_alert": {
            name: round(seconds * 1000 / alerts, 2)
            for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1])
        },
    }


def load_and_wait(
    address: tuple[str, int],
    cameras: list[common.Camera],
    picture: bytes,
    per_camera: int,
    mail: Any,
) -> int:
    """Every camera uploads `per_camera` snapshots; returns once each has its alert e-mail."""
    mark = mail.count()
    run = common.run_cameras(address, cameras, picture, seconds=600, per_camera=per_camera)
    if run.errors:
        raise RuntimeError(f"uploads failed: {run.errors[:3]}")
    expected = len(run.accepted)
    common.wait_for(lambda: mail.count() - mark >= expected, 600, "every alert e-mail", 0.05)
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=20, help="timed uploads per camera")
    parser.add_argument("--cloud-seconds", type=float, default=0.2)
    parser.add_argument(
        "--workers", type=int, default=AppConfig.model_fields["workers"].default,
        help="analysis threads (ours' default, %(default)s)",
    )  # fmt: skip
    parser.add_argument("--size", default="800x488", help="snapshot size")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    load_before = common.load_average()
    result = measure(args)
    rows = [[name, ms] for name, ms in result["stages_ms_per_alert"].items()]
    common.print_table(
        ["stage", "CPU ms per alert"], [*rows, ["total", result["cpu_ms_per_alert"]]]
    )
    print(f"{result['writes_per_alert']} write transactions per alert (SQLite)")
    print(f"{result['alerts']} alerts; load {load_before} → {common.load_average()}")
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    payload = {"settings": settings, "load_before": load_before, **result}
    common.write_results("alert_cpu", payload, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
