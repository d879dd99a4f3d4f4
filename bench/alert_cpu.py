#!/usr/bin/env python3
"""CPU milliseconds per alert in our process, by stage, and SQLite write transactions per alert:
4 cameras upload N snapshots each over real FTP (child processes), the service runs in this
process (built by `build_service`) with its default settings, the fake cloud is moto in its own
process (DetectLabels answers a person with a box after --cloud-seconds, SES takes the e-mail).

Each stage is timed with the CPU clock of the thread that runs it (`time.thread_time`), by
wrapping the functions that do it (the service's code is unchanged); a stage called inside
another counts for itself only, so the stages add up. What no wrapper covers (the FTP
listener's IO loop, logging, the worker loop) is "ingest and the rest": the process's CPU time
(`getrusage`) less the stages. Write transactions are counted on SQLite's write connection from
the statements it runs (harness/sqlite_writes.py): every BEGIN, and every write statement run
on its own.

    .venv/bin/python bench/alert_cpu.py                # 5 rounds of 4 × 20 alerts, the median
    .venv/bin/python bench/alert_cpu.py --uploads 40 --size 1920x1080 --channels 2
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common, side_by_side  # noqa: E402
from bench.moto_mail import MotoMail, moto  # noqa: E402
from harness.sqlite_writes import counted_writes  # noqa: E402
from harness.webhook import running_webhook_sink  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402
from ipcam_analysis.detect.rekognition import RekognitionDetector  # noqa: E402
from ipcam_analysis.notify import email, ses  # noqa: E402
from ipcam_analysis.notify.errors import ErrorReporter  # noqa: E402
from ipcam_analysis.service import delivery, detection, pending_writes, pipeline  # noqa: E402
from ipcam_analysis.service.decisions import CameraDecisions  # noqa: E402
from ipcam_analysis.store import EventStore  # noqa: E402
from ipcam_analysis.store.queue import UploadQueue  # noqa: E402

REST = "ingest (FTP listener) and the rest"
QUEUE = "queue (accept, claim, save, mark, finish)"
DECODE = "decode (read the upload, every pixel)"
DECIDE = "decide (frame hash, history, rules)"
DETECT = "detect call (boto3 to the fake cloud)"
DRAW = "draw + encode the alert picture"
RECORD = "record (thumbnail, files, event row)"
UNWRAPPED = "pipeline, unwrapped parts (logging, the alert value)"
MIME = "channel email: build the MIME message"
FLATTEN = "channel email: flatten it"
SES_CALL = "channel email: the SES call (boto3)"


class StageClock:
    """CPU seconds by stage, each stage's own (what a stage inside it used is that stage's)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._local = threading.local()

    def timed(self, stage: str | Callable[..., str], function: Callable[..., Any]) -> Any:
        """`function` wrapped; `stage` may name the stage from the call's arguments."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name = stage if isinstance(stage, str) else stage(*args, **kwargs)
            inner: list[float] = self._local.__dict__.setdefault("inner", [])
            inner.append(0.0)
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                nested = inner.pop()
                if inner:
                    inner[-1] += spent
                with self._lock:
                    self.seconds[name] += spent - nested

        return wrapper


def channel_of(notifier: Any, *_: Any) -> str:
    return f"channel {notifier.name}"


# (class or module, attribute, stage): what the bench wraps. A name the code no longer has is
# left out (the same bench measures the code before and after a change).
STAGES: list[tuple[Any, str, str | Callable[..., str]]] = [
    *((UploadQueue, name, QUEUE) for name in ("put_many", "claim", "save_detection")),
    *((UploadQueue, name, QUEUE) for name in ("save_decision", "mark_notified", "finish")),
    (pending_writes.PendingWrites, "commit", QUEUE),
    (pipeline, "read_upload", DECODE),
    (pipeline, "decode_snapshot", DECODE),
    (detection, "perceptual_hash", DECIDE),
    (detection, "one_name_per_object", DECIDE),
    (CameraDecisions, "repeated_frame", DECIDE),
    (CameraDecisions, "reserve_cloud_call", DECIDE),
    (CameraDecisions, "settle_cloud_calls", DECIDE),
    (pipeline.Pipeline, "_decide", DECIDE),
    (RekognitionDetector, "detect", DETECT),
    (delivery, "draw_boxes", DRAW),
    (delivery, "encode_jpeg", DRAW),
    (delivery, "_send_safely", channel_of),
    (email, "build_alert_email", MIME),
    (ses, "wire_bytes", FLATTEN),
    (ses.SesTransport, "send", SES_CALL),
    (pipeline, "event_pictures", RECORD),
    (EventStore, "keep_pictures", RECORD),
    (EventStore, "record", RECORD),
    (ErrorReporter, "clear", RECORD),
    (pipeline.Pipeline, "process", UNWRAPPED),
    (pipeline.Pipeline, "_notify", UNWRAPPED),
]


@contextmanager
def instrumented(clock: StageClock) -> Iterator[None]:
    wrapped = [(owner, name, stage) for owner, name, stage in STAGES if hasattr(owner, name)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in wrapped]
    for owner, name, stage in wrapped:
        setattr(owner, name, clock.timed(stage, getattr(owner, name)))
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
    with ExitStack() as stack:
        mail, _moto_pid = stack.enter_context(
            moto([side_by_side.label_person()], args.cloud_seconds)
        )
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="alert-cpu-")))
        settings = common.service_settings(
            work, cameras=args.cameras, workers=args.workers, detector={"type": "rekognition"},
            smtp_port=None,
        )  # fmt: skip
        settings["email"] = {"sender_email": "sender@example.com", "recipients": ["o@example.com"]}
        if args.channels == 2:  # a webhook beside the e-mail, its server in its own process
            connection = stack.enter_context(common.child_server(_serve_webhook))
            settings["notify"] = [connection.recv()]
        stack.enter_context(instrumented(clock))
        service = stack.enter_context(common.running_service(settings, work))
        address = service.ftp.address
        cameras = common.cameras(args.cameras)
        load_and_wait(address, cameras, picture, 1, mail)  # warm up
        rounds = []
        for _ in range(args.rounds):
            reference_ms = common.reference_loop_ms()  # how quick the machine is just now
            with counted_writes(service.database) as writes:
                clock.seconds.clear()
                cpu_before = process_cpu_seconds()
                alerts = load_and_wait(address, cameras, picture, args.uploads, mail)
                common.wait_for(lambda: service.queue.depth() == 0, 60, "the last items closed")
                total = process_cpu_seconds() - cpu_before
                rounds.append(_round(alerts, total, writes.count, dict(clock.seconds)))
                rounds[-1]["reference_loop_ms"] = reference_ms
    # The machine's neighbours slow a round by up to a third: the median round is reported.
    median = sorted(rounds, key=lambda r: r["cpu_ms_per_alert"])[len(rounds) // 2]
    return {
        **median,
        "rounds_cpu_ms_per_alert": [r["cpu_ms_per_alert"] for r in rounds],
        "rounds_reference_loop_ms": [r["reference_loop_ms"] for r in rounds],
    }


def _round(alerts: int, total: float, writes: int, stages: dict[str, float]) -> dict[str, Any]:
    stages[REST] = total - sum(stages.values())
    return {
        "alerts": alerts,
        "cpu_ms_per_alert": round(total * 1000 / alerts, 2),
        "writes_per_alert": round(writes / alerts, 2),
        "stages_ms_per_alert": {
            name: round(seconds * 1000 / alerts, 2)
            for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1])
        },
    }


def _serve_webhook(connection: Any, stop: Any) -> None:
    """A child process: a webhook sink; sends its Apprise URL."""
    with running_webhook_sink() as sink:
        connection.send(sink.url("/hook"))
        stop.wait()


def load_and_wait(
    address: tuple[str, int],
    cameras: list[common.Camera],
    picture: bytes,
    per_camera: int,
    mail: MotoMail,
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
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (the median is shown)")
    parser.add_argument("--cloud-seconds", type=float, default=0.2)
    parser.add_argument(
        "--workers", type=int, default=AppConfig.model_fields["workers"].default,
        help="analysis threads (ours' default, %(default)s)",
    )  # fmt: skip
    parser.add_argument("--channels", type=int, choices=(1, 2), default=1,
                        help="1: e-mail through SES; 2: and a webhook")  # fmt: skip
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
    print(f"rounds, CPU ms per alert: {result['rounds_cpu_ms_per_alert']} (the median shown)")
    print(f"reference loop before each round, ms: {result['rounds_reference_loop_ms']}")
    print(f"{result['alerts']} alerts; load {load_before} → {common.load_average()}")
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    payload = {"settings": settings, "load_before": load_before, **result}
    common.write_results("alert_cpu", payload, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
