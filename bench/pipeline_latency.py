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
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402

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
    args = common.parse_args_with_what_if_tls(parser)
    data = common.snapshot_jpeg(common.parse_size(args.size))
    results = [measure(kind, data, args) for kind in args.detectors]
    print(f"226 → alert at the SMTP server, {args.size} ({len(data)} bytes), ms:")
    common.print_table(
        ["detector", "n", "p50", "p95", "p99", "max", "detector p50", "load before"],
        [
            [
                r["detector"],
                *(r["latency_ms"][key] for key in ("n", "p50", "p95", "p99", "max")),
                r["detector_ms"].get("p50", "-"),
                " ".join(map(str, r["load_before"])),
            ]
            for r in results
        ],
    )
    settings = {"uploads": args.uploads, "warmup": args.warmup, "size": args.size}
    settings |= {"snapshot_bytes": len(data), "workers": args.workers}
    settings |= {"what_if_tls_context_once": args.what_if_tls_context_once}
    common.write_results(
        "pipeline_latency", {"settings": settings, "results": results}, args.output
    )
    fake = next((r for r in results if r["detector"] == "fake"), None)
    if fake is None:
        return 0
    met = fake["latency_ms"]["p50"] <= GOAL_P50_MS and fake["latency_ms"]["p99"] <= GOAL_P99_MS
    return 0 if met else 1


def measure(kind: str, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    load_before = common.load_average()
    with common.in_process_service(
        "rekognition" if kind == "fake" else kind,  # the fake stands in a cloud detector's place
        workers=args.workers,
        cameras_count=1,
        make_detector=common.fake_detectors(0.0) if kind == "fake" else None,
        moto=kind in ("rekognition", "cascade"),
    ) as (service, mails):
        latencies = timed_uploads(service, mails, data, args.warmup, args.uploads)
        rows = service.database.query(
            "SELECT detector_ms FROM events WHERE outcome = 'alert' ORDER BY id"
        )
        detector_ms = [row[0] for row in rows[args.warmup :]]
        outcomes = service.database.query("SELECT outcome, COUNT(*) FROM events GROUP BY 1")
    result = {
        "detector": kind + (" (moto)" if kind in ("rekognition", "cascade") else ""),
        "latency_ms": common.percentiles(latencies),
        "detector_ms": common.percentiles(detector_ms) if kind != "fake" else {},
        "outcomes": {row[0]: row[1] for row in outcomes},
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    print(f"{kind}: {result['latency_ms']} load {load_before}", file=sys.stderr)
    return result


def timed_uploads(
    service: Any, mails: common.MailArrivals, data: bytes, warmup: int, count: int
) -> list[float]:
    """Milliseconds from each upload's 226 to its e-mail's arrival, one upload at a time."""
    camera = common.cameras(1)[0]
    latencies = []
    for number in range(warmup + count):
        common.wait_for(
            lambda: service.queue.depth() == 0, 60, "the previous upload to finish", 0.002
        )
        accepted = common.upload_once(service.ftp.address, camera, data, f"{number:06d}.jpg")
        arrived = mails.next_arrival(60)
        if number >= warmup:
            latencies.append((arrived - accepted) * 1000)
    return latencies


if __name__ == "__main__":
    sys.exit(main())
