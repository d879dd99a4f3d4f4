#!/usr/bin/env python3
"""Resources of a real `ipcam-analysis` process: resident memory idle and under load, and CPU
seconds per image, for the rekognition (moto) and local configurations.

The service runs as its own process (`python -m ipcam_analysis.cli -c config.yaml`, the console
script's main, dashboard on); /proc/PID/status (VmRSS, VmHWM) and /proc/PID/stat (utime + stime)
are read from outside. Cameras upload an 800×488 snapshot of people over real FTP from child
processes; every upload alerts and is e-mailed over SMTP to a real aiosmtpd sink on loopback.
Rekognition is moto (the AWS mock) over HTTP on loopback, not Amazon. CPU per image is the
service's CPU from the first upload until the queue is empty, over the uploads processed.

    .venv/bin/python bench/resources.py
    .venv/bin/python bench/resources.py --configs local --uploads 500
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402

CONFIGS = {"rekognition": 8, "local": 2}  # detector: workers (the default; the README's advice)
IDLE_GOAL_MB = 80.0  # without the local detector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--uploads", type=int, default=300, help="uploads under load (300)")
    parser.add_argument("--cameras", type=int, default=10, help="cameras uploading (10)")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between a camera's uploads (0.5)"
    )
    parser.add_argument("--idle-seconds", type=float, default=15.0, help="idle before load")
    parser.add_argument(
        "--idle-workers",
        type=int,
        nargs="*",
        default=[1, 2, 8],
        help="also the idle RSS of the rekognition configuration with these worker counts",
    )
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    results = [measure(detector, args) for detector in args.configs]
    # Each rekognition worker has its own boto3 client: what one worker costs, idle.
    by_workers = {n: idle_rss("rekognition", n, args) for n in args.idle_workers}
    header = ["config", "workers", "idle RSS MB", "RSS under load MB", "peak (VmHWM) MB"]
    header += ["RSS after MB", "CPU ms/image", "images", "load before"]
    common.print_table(
        header,
        [
            [
                r["config"],
                r["workers"],
                r["idle_rss_mb"],
                r["load_rss_mb"]["max"],
                r["peak_rss_mb"],
                r["after_rss_mb"],
                round(r["cpu_seconds_per_image"] * 1000, 1),
                r["images"],
                " ".join(map(str, r["load_before"])),
            ]
            for r in results
        ],
    )
    settings = {"uploads": args.uploads, "cameras": args.cameras, "interval": args.interval}
    settings["snapshot"] = "800x488"
    if by_workers:
        print("idle RSS of rekognition (moto) by workers:", by_workers)
    payload = {"settings": settings, "results": results, "idle_rss_mb_by_workers": by_workers}
    common.write_results("resources", payload, args.output)
    return 0


def idle_rss(detector: str, workers: int, args: argparse.Namespace) -> float:
    """VmRSS after --idle-seconds without uploads."""
    with common.started_service_process(detector, workers, args.cameras) as service:
        time.sleep(args.idle_seconds)
        return common.process_rss_mb(service.pid)


def measure(detector: str, args: argparse.Namespace) -> dict[str, Any]:
    workers = CONFIGS[detector]
    data = common.snapshot_jpeg(common.SIZES["800x488"])
    load_before = common.load_average()
    with common.started_service_process(detector, workers, args.cameras) as service:
        pid, mails = service.pid, service.mails
        idle_cpu = common.process_cpu_seconds(pid)
        time.sleep(args.idle_seconds)
        idle_rss = common.process_rss_mb(pid)
        cpu_before = common.process_cpu_seconds(pid)

        def sample() -> float:
            mails.drain()
            return common.process_rss_mb(pid)

        with common.Sampler(sample, 0.25) as sampler:
            per_camera = math.ceil(args.uploads / args.cameras)
            run = common.upload_and_drain(
                service,
                data,
                args.cameras,
                seconds=per_camera * args.interval + 60,
                per_camera=per_camera,
                interval=args.interval,
                drain_timeout=600,
                drain_poll=0.25,
            )
        cpu_after = common.process_cpu_seconds(pid)
        images = common.queue_counts(service.database)[1]
        result = {
            "config": detector + (" (moto)" if detector == "rekognition" else ""),
            "workers": workers,
            "idle_rss_mb": idle_rss,
            "idle_cpu_percent": round((cpu_before - idle_cpu) * 100 / args.idle_seconds, 1),
            "load_rss_mb": {
                "max": max(v for _, v in sampler.samples),
                "mean": round(sum(v for _, v in sampler.samples) / len(sampler.samples), 1),
            },
            "peak_rss_mb": common.process_rss_mb(pid, "VmHWM"),
            "after_rss_mb": common.process_rss_mb(pid),
            "cpu_seconds_per_image": round((cpu_after - cpu_before) / max(1, images), 4),
            "images": images,
            "mails": mails.drain(),
            "upload_errors": len(run.errors),
            "rss_every_0.25s": [v for _, v in sampler.samples],
            "load_before": load_before,
            "load_after": common.load_average(),
        }
    print(f"{result['config']}: {result['idle_rss_mb']} MB idle", file=sys.stderr)
    return result


if __name__ == "__main__":
    sys.exit(main())
