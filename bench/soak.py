#!/usr/bin/env python3
"""Soak: a real `ipcam-analysis` process under a steady camera load for --minutes (30 by default),
its resident memory (VmRSS) sampled every 30 s, to show it does not grow after warm-up.

Cameras upload an 800×488 snapshot of people over real FTP (each from its own loopback address,
one session per upload as cameras do); every upload alerts and is e-mailed over SMTP to a real
aiosmtpd sink on loopback. Rekognition is moto (the AWS mock) over HTTP, not Amazon. Goal: RSS at
the end within 5 % of RSS after warm-up.

    .venv/bin/python bench/soak.py                       # 30 minutes, 10 cameras every 5 s
    .venv/bin/python bench/soak.py --minutes 2 --detector local
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

GROWTH_GOAL_PERCENT = 5.0
IDLE_SECONDS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="load duration (default 30)")
    parser.add_argument("--cameras", type=int, default=10, help="cameras uploading (default 10)")
    parser.add_argument(
        "--interval", type=float, default=5.0, help="seconds between a camera's uploads (5)"
    )
    parser.add_argument(
        "--detector", choices=["rekognition", "local", "cascade"], default="rekognition"
    )
    parser.add_argument("--workers", type=int, default=8, help="service workers (default 8)")
    parser.add_argument("--size", default="800x488", help="snapshot size (default 800x488)")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="RSS sampling period")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        help="samples before this are warm-up (default: 5, or a sixth of a shorter soak)",
    )
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/soak-TIME)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    warmup = args.warmup_minutes if args.warmup_minutes is not None else min(5, args.minutes / 6)
    load_before = common.load_average()
    report = soak(args, warmup * 60)
    report["load_before"] = load_before
    report["load_after"] = common.load_average()
    summary = report["summary"]
    rows = [
        [f"{s['t']:.0f}", s["rss_mb"], s["cpu_s"], s["done"], s["unfinished"], s["mails"]]
        for s in report["samples"]
    ]
    common.print_table(["t (s)", "RSS MB", "CPU s", "done", "queued", "mails"], rows)
    print(
        f"idle RSS {summary['idle_rss_mb']} MB; after warm-up {summary['warm_rss_mb']} MB; "
        f"end {summary['end_rss_mb']} MB; growth {summary['growth_percent']} % "
        f"(goal ≤ {GROWTH_GOAL_PERCENT} %); load {load_before} → {report['load_after']}"
    )
    common.write_results("soak", report, args.output)
    return 0 if summary["growth_percent"] <= GROWTH_GOAL_PERCENT else 1


def soak(args: argparse.Namespace, warmup_seconds: float) -> dict[str, Any]:
    seconds = args.minutes * 60
    data = common.snapshot_jpeg(common.parse_size(args.size))
    with common.started_service_process(args.detector, args.workers, args.cameras) as service:
        pid, mails, database = service.pid, service.mails, service.database
        time.sleep(IDLE_SECONDS)
        idle_rss = common.process_rss_mb(pid)

        def sample() -> dict[str, Any]:
            unfinished, done = common.queue_counts(database)
            return {
                "rss_mb": common.process_rss_mb(pid),
                "cpu_s": round(common.process_cpu_seconds(pid), 1),
                "done": done,
                "unfinished": unfinished,
                "mails": mails.drain(),
                "load": common.load_average()[0],
            }

        with common.Sampler(sample, args.sample_seconds) as sampler:
            run = common.upload_and_drain(
                service,
                data,
                args.cameras,
                seconds=seconds,
                per_camera=math.ceil(seconds / args.interval) + 1,
                interval=args.interval,
                drain_timeout=300,
                drain_poll=0.5,
            )
        final = sample()
    samples = [{"t": t, **values} for t, values in sampler.samples]
    samples.append({"t": round(time.monotonic() - sampler.started, 1), **final})
    warm = next((s for s in samples if s["t"] >= warmup_seconds), samples[-1])
    end_rss = round(sum(s["rss_mb"] for s in samples[-3:]) / len(samples[-3:]), 1)
    return {
        "settings": {
            "minutes": args.minutes,
            "cameras": args.cameras,
            "interval_seconds": args.interval,
            "detector": args.detector + (" (moto)" if args.detector != "local" else ""),
            "workers": args.workers,
            "snapshot": f"{args.size}, {len(data)} bytes",
            "warmup_seconds": warmup_seconds,
        },
        "uploads_accepted": len(run.accepted),
        "upload_errors": len(run.errors),
        "first_errors": run.errors[:5],
        "samples": samples,
        "summary": {
            "idle_rss_mb": idle_rss,
            "warm_rss_mb": warm["rss_mb"],
            "end_rss_mb": end_rss,
            "max_rss_mb": max(s["rss_mb"] for s in samples),
            "growth_percent": round((end_rss - warm["rss_mb"]) * 100 / warm["rss_mb"], 1),
            "cpu_seconds_per_image": round(
                (final["cpu_s"] - samples[0]["cpu_s"]) / max(1, final["done"]), 4
            ),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
