#!/usr/bin/env python3
"""Pipeline latency: from the camera's `226 Transfer complete` to the alert e-mail arriving at a
real SMTP server, per detector, p50/p95/p99 over --uploads uploads (500 by default).

One camera uploads a snapshot of people over real FTP; the next upload waits until the service
is idle again (each figure is one alert on a quiet service; see bench/throughput.py for load).
The clock stops in the SMTP sink (aiosmtpd on loopback, in its own process) when the DATA
command has received the whole message: nothing is subtracted. Detectors:

  fake          answers at once at the detector interface: our own overhead
  local         YOLOv3-tiny on onnxruntime, for real
  rekognition   moto (the AWS mock) over HTTP on loopback, not Amazon
  cascade       local, then moto

    .venv/bin/python bench/pipeline_latency.py
    .venv/bin/python bench/pipeline_latency.py --detectors fake --uploads 1000 --size 1920x1080
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.common import (  # noqa: E402
    WHAT_IF_TLS_HELP,
    MailArrivals,
    cameras,
    exit_on_sigterm,
    fake_detectors,
    load_average,
    moto_rekognition,
    parse_size,
    percentiles,
    print_table,
    rekognition_person,
    running_service,
    seed_model_cache,
    service_settings,
    snapshot_jpeg,
    timing_sink,
    upload_once,
    wait_for,
    what_if_tls_context_once,
    write_results,
)

DETECTORS = ["fake", "local", "rekognition", "cascade"]
GOAL_P50_MS, GOAL_P99_MS = 10.0, 50.0  # our own overhead (fake detector)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=500, help="timed uploads per detector")
    parser.add_argument("--warmup", type=int, default=20, help="untimed uploads first")
    parser.add_argument(
        "--detectors", nargs="+", choices=DETECTORS, default=DETECTORS, help="which to run"
    )
    parser.add_argument("--size", default="800x488", help="snapshot size (default 800x488)")
    parser.add_argument("--workers", type=int, default=2, help="service workers (default 2)")
    parser.add_argument("--what-if-tls-context-once", action="store_true", help=WHAT_IF_TLS_HELP)
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    exit_on_sigterm()
    if args.what_if_tls_context_once:
        what_if_tls_context_once()
    data = snapshot_jpeg(parse_size(args.size))
    results = [measure(kind, data, args) for kind in args.detectors]
    print(f"226 → alert at the SMTP server, {args.size} ({len(data)} bytes), ms:")
    print_table(
        ["detector", "n", "p50", "p95", "p99", "max", "detector p50", "load before"],
        [
            [
                r["detector"],
                r["latency_ms"]["n"],
                r["latency_ms"]["p50"],
                r["latency_ms"]["p95"],
                r["latency_ms"]["p99"],
                r["latency_ms"]["max"],
                r["detector_ms"].get("p50", "-"),
                " ".join(map(str, r["load_before"])),
            ]
            for r in results
        ],
    )
    settings = {"uploads": args.uploads, "warmup": args.warmup, "size": args.size}
    settings |= {"snapshot_bytes": len(data), "workers": args.workers}
    settings |= {"what_if_tls_context_once": args.what_if_tls_context_once}
    write_results("pipeline_latency", {"settings": settings, "results": results}, args.output)
    fake = next((r for r in results if r["detector"] == "fake"), None)
    if fake is None:
        return 0
    met = fake["latency_ms"]["p50"] <= GOAL_P50_MS and fake["latency_ms"]["p99"] <= GOAL_P99_MS
    return 0 if met else 1


def measure(kind: str, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    load_before = load_average()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-latency-")))
        mails = stack.enter_context(timing_sink())
        if kind in ("rekognition", "cascade"):
            stack.enter_context(moto_rekognition(rekognition_person()))
        seed_model_cache(work)
        detector = {"type": "rekognition" if kind == "fake" else kind}
        settings = service_settings(
            work, cameras=1, workers=args.workers, detector=detector, smtp_port=mails.port
        )
        make_detector = fake_detectors(0.0) if kind == "fake" else None
        service = stack.enter_context(running_service(settings, work, make_detector))
        latencies = timed_uploads(service, mails, data, args.warmup, args.uploads)
        rows = service.database.query(
            "SELECT detector_ms FROM events WHERE outcome = 'alert' ORDER BY id"
        )
        detector_ms = [row[0] for row in rows[args.warmup :]]
        outcomes = service.database.query("SELECT outcome, COUNT(*) FROM events GROUP BY 1")
    result = {
        "detector": kind + (" (moto)" if kind in ("rekognition", "cascade") else ""),
        "latency_ms": percentiles(latencies),
        "detector_ms": percentiles(detector_ms) if kind != "fake" else {},
        "outcomes": {row[0]: row[1] for row in outcomes},
        "load_before": load_before,
        "load_after": load_average(),
    }
    print(f"{kind}: {result['latency_ms']} load {load_before}", file=sys.stderr)
    return result


def timed_uploads(
    service: Any, mails: MailArrivals, data: bytes, warmup: int, count: int
) -> list[float]:
    """Milliseconds from each upload's 226 to its e-mail's arrival, one upload at a time."""
    camera = cameras(1)[0]
    latencies = []
    for number in range(warmup + count):
        wait_for(lambda: service.queue.depth() == 0, 60, "the previous upload to finish", 0.002)
        accepted = upload_once(service.ftp.address, camera, data, f"{number:06d}.jpg")
        arrived = mails.next_arrival(60)
        if number >= warmup:
            latencies.append((arrived - accepted) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main())
