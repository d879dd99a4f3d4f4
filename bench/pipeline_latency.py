#!/usr/bin/env python3
"""Pipeline latency: from the camera's `226 Transfer complete` to the alert handed to the mail
transport, and to its arrival at a real SMTP server, per detector, p50/p95/p99 over --uploads
uploads (500 by default).

One camera (a child process: cameras are other machines) uploads a snapshot of people over real
FTP; the next upload waits until the service is idle again (each figure is one alert on a quiet
service; see bench/throughput.py for load). Two clocks stop: when the service calls its SMTP
transport with the finished message (the goal's end point), and when the SMTP sink (aiosmtpd on
loopback, in its own process) has received the whole message, which adds the SMTP conversation
and the sink's own time. Detectors:

  fake          answers at once at the detector interface: our own overhead
  local         YOLOv3-tiny on onnxruntime, for real
  rekognition   moto (the AWS mock) over HTTP on loopback, not Amazon
  cascade       local, then moto

    .venv/bin/python bench/pipeline_latency.py
    .venv/bin/python bench/pipeline_latency.py --detectors fake --uploads 1000 --size 1920x1080
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.notify.smtp import SmtpTransport  # noqa: E402

DETECTORS = ["fake", "local", "rekognition", "cascade"]
GOAL_P50_MS, GOAL_P99_MS = 10.0, 50.0  # our own overhead (fake detector), to the transport


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=500, help="timed uploads per detector")
    parser.add_argument("--warmup", type=int, default=20, help="untimed uploads first")
    parser.add_argument(
        "--detectors", nargs="+", choices=DETECTORS, default=DETECTORS, help="which to run"
    )
    parser.add_argument("--size", default="800x488", help="snapshot size (default 800x488)")
    parser.add_argument("--workers", type=int, default=2, help="service workers (default 2)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    data = common.snapshot_jpeg(common.parse_size(args.size))
    results = [measure(kind, data, args) for kind in args.detectors]
    print(f"226 → alert handed to the SMTP transport | at the SMTP server, {args.size}, ms:")
    common.print_table(
        ["detector", "n", "p50", "p95", "p99", "max", "| server p50", "p99", "detector p50"],
        [
            [
                r["detector"],
                *(r["handed_ms"][key] for key in ("n", "p50", "p95", "p99", "max")),
                r["latency_ms"]["p50"],
                r["latency_ms"]["p99"],
                r["detector_ms"].get("p50", "-"),
            ]
            for r in results
        ],
    )
    settings = {"uploads": args.uploads, "warmup": args.warmup, "size": args.size}
    settings |= {"snapshot_bytes": len(data), "workers": args.workers}
    common.write_results(
        "pipeline_latency", {"settings": settings, "results": results}, args.output
    )
    fake = next((r for r in results if r["detector"] == "fake"), None)
    if fake is None:
        return 0
    met = fake["handed_ms"]["p50"] <= GOAL_P50_MS and fake["handed_ms"]["p99"] <= GOAL_P99_MS
    return 0 if met else 1


def measure(kind: str, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    load_before = common.load_average()
    with (
        common.in_process_service(
            "rekognition"
            if kind == "fake"
            else kind,  # the fake stands in a cloud detector's place
            workers=args.workers,
            cameras_count=1,
            make_detector=common.FakeDetectors(0.0) if kind == "fake" else None,
            moto=kind in ("rekognition", "cascade"),
        ) as (service, mails),
        transport_handoffs() as handed,
        common.remote_camera(service.ftp.address, common.cameras(1)[0], data) as upload,
    ):
        accepted, arrived = timed_uploads(service, mails, upload, args.warmup + args.uploads)
        rows = service.database.query(
            "SELECT detector_ms FROM events WHERE outcome = 'alert' ORDER BY id"
        )
        detector_ms = [row[0] for row in rows[args.warmup :]]
        outcomes = service.database.query("SELECT outcome, COUNT(*) FROM events GROUP BY 1")
    timed = slice(args.warmup, None)
    result = {
        "detector": kind + (" (moto)" if kind in ("rekognition", "cascade") else ""),
        "handed_ms": common.percentiles(milliseconds(accepted[timed], handed[timed])),
        "latency_ms": common.percentiles(milliseconds(accepted[timed], arrived[timed])),
        "detector_ms": common.percentiles(detector_ms) if kind != "fake" else {},
        "outcomes": {row[0]: row[1] for row in outcomes},
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    print(f"{kind}: {result['handed_ms']} load {load_before}", file=sys.stderr)
    return result


@contextmanager
def transport_handoffs() -> Iterator[list[float]]:
    """The monotonic time at which the service hands each message to its SMTP transport."""
    times: list[float] = []
    send = SmtpTransport.send

    def timed_send(self: SmtpTransport, message: EmailMessage, recipients: list[str]) -> None:
        times.append(time.monotonic())
        send(self, message, recipients)

    SmtpTransport.send = timed_send  # type: ignore[method-assign]
    try:
        yield times
    finally:
        SmtpTransport.send = send  # type: ignore[method-assign]


def timed_uploads(
    service: Any, mails: common.MailArrivals, upload: common.RemoteUpload, count: int
) -> tuple[list[float], list[float]]:
    """Each upload's 226 and its e-mail's arrival (monotonic), one upload at a time."""
    accepted, arrived = [], []
    for number in range(count):
        common.wait_for(
            lambda: service.queue.depth() == 0, 60, "the previous upload to finish", 0.002
        )
        accepted.append(upload(f"{number:06d}.jpg"))
        arrived.append(mails.next_arrival(60))
    return accepted, arrived


def milliseconds(starts: list[float], ends: list[float]) -> list[float]:
    return [(end - start) * 1000 for start, end in zip(starts, ends, strict=True)]


if __name__ == "__main__":
    sys.exit(main())
