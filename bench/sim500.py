#!/usr/bin/env python3
"""500 cameras: each uploads a snapshot every 10 s over FTP (50 uploads/s, paced and spread
evenly), sustained for --minutes (10); the queue depth and the latency over time, and a verdict:
did the queue stay bounded, or grow, and how fast?

The cameras run in child processes (bench/common.py's cameras, each from its own loopback
address, one FTP session per upload as cameras do). The service: one node with every role on
SQLite (default), or with `--backend postgresql` an ingest node and --worker-nodes worker nodes
sharing a throw-away PostgreSQL server, each node a real process (bench/node.py). Detector: a
fake cloud answering a person after 0.2 s (every upload alerts and is e-mailed to a real SMTP
sink on loopback), or the real local detector (--local-detector). `--no-alerts`: the fake
detector sees nothing, so nothing is drawn or e-mailed (to tell whether alerting is the
bottleneck).

Every --sample-every s the bench reads the queue depth from the database and /proc for the
cores used; at the end, each upload's received_at and finished_at (see bench/nodes.py) give,
per --window (30 s): uploads received and finished, and the p50/p99 latency of those finished.

    .venv/bin/python bench/sim500.py --minutes 1                     # a smoke run
    .venv/bin/python bench/sim500.py --backend postgresql --worker-nodes 2
    .venv/bin/python bench/sim500.py --backend postgresql --storage s3   # moto's S3
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

from bench import cluster, common  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402

MAX_QUEUED_UPLOADS = 10_000  # ftp_server.max_queued_uploads' default: past it, FTP refuses
BOUNDED_GROWTH_SHARE = 0.02  # growth under 2 % of the offered rate counts as bounded
DEFAULT_WORKERS = AppConfig.model_fields["workers"].default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--cameras", type=int, default=500)
    parser.add_argument("--interval", type=float, default=10.0, help="a camera's seconds (10)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--worker-nodes", type=int, default=2, help="with postgresql (2)")
    parser.add_argument(
        "--workers", type=int, help="threads per node (the service's default; 1 with the local one)"
    )
    parser.add_argument("--worker-processes", type=int, default=1, help="per node (1)")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake detector's seconds")
    parser.add_argument("--local-detector", action="store_true")
    parser.add_argument("--no-alerts", action="store_true", help="the fake detector sees nothing")
    parser.add_argument("--size", choices=list(common.SIZES), default="800x488")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per row (30)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="depth sampling (5 s)")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="wait after the load")
    parser.add_argument("--load-processes", type=int, default=2, help="camera processes (2)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    args.workers = args.workers or (1 if args.local_detector else DEFAULT_WORKERS)
    layout = cluster.Layout(
        cameras=args.cameras,
        worker_nodes=args.worker_nodes if args.backend == "postgresql" else 0,
        workers=args.workers,
        worker_processes=args.worker_processes,
        detector="local" if args.local_detector else "fake",
        latency=args.latency,
        no_alerts=args.no_alerts,
    )
    load_before = common.load_average()
    report = simulate(args, layout)
    report["load_before"], report["load_after"] = load_before, common.load_average()
    windows, verdict = report["windows"], report["verdict"]
    print_series(windows)
    print(verdict["text"])
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    common.write_results(f"sim500-{args.backend}", {"settings": settings, **report}, args.output)
    return 0


def simulate(args: argparse.Namespace, layout: cluster.Layout) -> dict[str, Any]:
    """The load for --minutes, then up to --drain-seconds for the queue to empty."""
    seconds = args.minutes * 60
    data = common.snapshot_jpeg(common.SIZES[args.size])
    with (
        cluster.servers(args.backend, args.storage) as shared,
        cluster.deployment(shared, layout, "sim500") as nodes,
    ):

        def sample() -> dict[str, Any]:
            return {
                "epoch": time.time(),
                "depth": nodes.depth(),
                "mails": shared.mails.count,
                "jiffies": cluster.machine_jiffies(),
                "cpu": nodes.cpu_seconds(),
            }

        start: dict[str, float] = {}
        with common.Sampler(sample, args.sample_every) as sampler:
            run = common.run_cameras(
                nodes.address,
                common.cameras(args.cameras),
                data,
                seconds=seconds,
                per_camera=math.ceil(seconds / args.interval),
                interval=args.interval,
                processes=args.load_processes,
                on_start=lambda _: start.update(epoch=time.time()),
                spread=True,
            )
            start["end"] = time.time()
            drained = drain(nodes, args.drain_seconds)
        rows = nodes.database.query("SELECT received_at, finished_at FROM uploads")
    samples = [s for _, s in sampler.samples]
    windows = series(rows, samples, start, args.window)
    offered = args.cameras / args.interval
    verdict = judge(samples, start, offered, run, drained)
    return {
        "offered_per_second": offered,
        "accepted": len(run.accepted),
        "refused_or_failed": len(run.errors),
        "first_errors": run.errors[:5],
        "ack_ms": common.percentiles(run.latencies_ms),
        "verdict": verdict,
        "windows": windows,
        "samples": [{**s, "t": round(s["epoch"] - start["epoch"], 1)} for s in samples],
    }


def drain(nodes: cluster.Deployment, limit: float) -> float | None:
    """Seconds until the queue is empty after the load, or None if it was not within `limit`."""
    started = time.monotonic()
    try:
        common.wait_for(lambda: nodes.depth() == 0, limit, "the queue to drain", poll=1.0)
    except TimeoutError:
        return None
    return round(time.monotonic() - started, 1)


def series(
    rows: list[Any], samples: list[dict[str, Any]], start: dict[str, float], window: float
) -> list[dict[str, Any]]:
    """Per window from the load's start: uploads received and finished, the p50/p99 latency of
    those finished, the depth at its end, and the cores busy (all, and not the bench's)."""
    received = sorted(common.epoch_of(row[0]) for row in rows)
    finished = common.finish_latencies([row for row in rows if row[1] is not None])
    last = samples[-1]["epoch"]  # the windows end with the sampling (the last one may be short)
    found = []
    for index in range(math.ceil((last - start["epoch"]) / window)):
        low = start["epoch"] + index * window
        high = min(low + window, last)
        done = [ms for at, ms in finished if low <= at < high]
        latency = common.percentiles(done)
        first, end = _around(samples, low), _around(samples, high)
        busy = cluster.busy_cores(first["jiffies"], end["jiffies"])
        ours = (end["cpu"]["all"] - first["cpu"]["all"]) / max(end["epoch"] - first["epoch"], 1)
        found.append(
            {
                "t": round(high - start["epoch"]),
                "received_per_second": round(
                    sum(low <= r < high for r in received) / (high - low), 1
                ),
                "finished_per_second": round(len(done) / (high - low), 1),
                "depth": end["depth"],
                "p50_ms": latency.get("p50"),
                "p99_ms": latency.get("p99"),
                "busy_cores": busy["busy_cores"],
                "others_cores": round(busy["busy_cores"] - ours, 2),
                "load": "on" if (low + high) / 2 < start["end"] else "drain",
            }
        )
    return found


def _around(samples: list[dict[str, Any]], moment: float) -> dict[str, Any]:
    """The last sample at or before `moment` (the first one if none)."""
    before = [s for s in samples if s["epoch"] <= moment]
    return before[-1] if before else samples[0]


def judge(
    samples: list[dict[str, Any]],
    start: dict[str, float],
    offered: float,
    run: common.UploadRun,
    drained: float | None,
) -> dict[str, Any]:
    """Bounded or growing: the depth's least-squares slope over the load's second half."""
    middle = (start["epoch"] + start["end"]) / 2
    half = [(s["epoch"], s["depth"]) for s in samples if middle <= s["epoch"] <= start["end"]]
    slope = _slope(half)
    depth = half[-1][1] if half else 0
    accepted = len(run.accepted) / run.seconds
    bounded = slope < BOUNDED_GROWTH_SHARE * offered and not run.errors
    text = (
        f"Offered {offered:.0f}/s, accepted {accepted:.1f}/s, {len(run.errors)} refused or"
        f" failed; depth {depth} at the end of the load, growing {slope:+.2f} uploads/s"
        f" ({slope * 60:+.0f}/min) over its second half. "
    )
    if bounded:
        text += "SUSTAINED: the queue stayed bounded."
    else:
        text += "NOT SUSTAINED: the queue grew."
        if slope > 0:
            text += (
                f" At this rate it reaches ftp_server.max_queued_uploads ({MAX_QUEUED_UPLOADS})"
                f" after {max(0.0, (MAX_QUEUED_UPLOADS - depth) / slope / 60):.0f} more min;"
                " then FTP refuses uploads (cameras retry)."
            )
    text += f" Drained {drained} s after the load." if drained is not None else " Not drained."
    return {
        "sustained": bounded,
        "depth_growth_per_second": round(slope, 3),
        "end_depth": depth,
        "max_depth": max((s["depth"] for s in samples), default=0),
        "accepted_per_second": round(accepted, 1),
        "drained_after_seconds": drained,
        "text": text,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; 0 for fewer than two."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def print_series(windows: list[dict[str, Any]]) -> None:
    header = ["t s", "load", "received/s", "finished/s", "depth", "p50 ms", "p99 ms"]
    header += ["busy cores", "others' cores"]
    keys = ["t", "load", "received_per_second", "finished_per_second", "depth", "p50_ms"]
    keys += ["p99_ms", "busy_cores", "others_cores"]
    common.print_table(header, [["" if w[k] is None else w[k] for k in keys] for w in windows])


if __name__ == "__main__":
    sys.exit(main())
