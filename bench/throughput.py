#!/usr/bin/env python3
"""Throughput: N cameras uploading at once over real FTP, as fast as the server answers; uploads
accepted per second (client-side 226), uploads processed per second, and the queue depth over
time, with a fake detector of fixed latency at the detector interface (0, 0.2 s, 1 s: the cloud).

Two parts: a matrix of cameras × snapshot size × detector latency (--workers workers), cameras
uploading back to back; and a worker sweep with the 0.2 s detector (does throughput grow with
the workers?), cameras paced to offer more than the workers can take. Cameras run in
child processes, each from its own loopback address; by default every upload alerts and is
e-mailed over SMTP to a real aiosmtpd sink on loopback (`--no-alerts`: the detector sees nothing).

    .venv/bin/python bench/throughput.py                      # both parts, 15 s per case
    .venv/bin/python bench/throughput.py --part sweep --seconds 20 --no-alerts
    .venv/bin/python bench/throughput.py --part processes --seconds 20   # 1, 2, 4 worker processes
    .venv/bin/python bench/throughput.py --part processes --local-detector --workers 1

With --local-detector the processes part runs the real local detector (one onnxruntime thread
per detector) instead of the fake one: does CPU-bound analysis grow with processes?

Each case also gives the p50/p99 latency from an upload's received_at to its finished_at (after
the e-mail reached the sink), of the uploads finished in the window, read from the database (as
bench/nodes.py does): while the cameras offer more than the workers take, mostly queue wait.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402

SCALING_GOAL = 8.0  # 16 workers ≥ 8 × one worker, with the 0.2 s detector
ACCEPT_GOAL_PER_SECOND = 200.0  # while the workers are busy
MAX_UPLOADS_PER_CAMERA = 100_000  # a bound; the time limit ends each case first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "matrix", "sweep", "processes"], default="all")
    parser.add_argument("--seconds", type=float, default=15.0, help="upload window per case")
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--sizes", nargs="+", choices=list(common.SIZES), default=["800x488", "1920x1080"]
    )
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.2, 1.0])
    parser.add_argument("--workers", type=int, default=8, help="workers in the matrix (8)")
    parser.add_argument("--sweep-workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--sweep-cameras", type=int, default=10)
    parser.add_argument("--sweep-latency", type=float, default=0.2)
    parser.add_argument(
        "--sweep-interval",
        type=float,
        default=0.1,
        help="seconds between a camera's uploads in the sweep (0.1: 100/s offered by 10 cameras,"
        " more than 16 workers can take, without flooding the FTP thread)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="worker_processes in the processes part (each with --workers threads)",
    )
    parser.add_argument(
        "--local-detector",
        action="store_true",
        help="the processes part with the real local detector (1 onnxruntime thread each)",
    )
    parser.add_argument("--no-alerts", action="store_true", help="the detector finds nothing")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    cases: list[dict[str, Any]] = []
    if args.part in ("all", "matrix"):
        cases += [
            {
                "part": "matrix",
                "cameras": n,
                "size": size,
                "latency": lat,
                "workers": args.workers,
                "interval": 0.0,
                "source": "ftp",
            }
            for size in args.sizes
            for lat in args.latencies
            for n in args.cameras
        ]
    if args.part in ("all", "sweep"):
        cases += [
            {
                "part": "sweep",
                "cameras": args.sweep_cameras,
                "size": "800x488",
                "latency": args.sweep_latency,
                "workers": workers,
                "interval": args.sweep_interval,
                "source": "ftp",
            }
            for workers in args.sweep_workers
        ]
    if args.part == "processes":
        cases += [
            {
                "part": "processes",
                "cameras": args.sweep_cameras,
                "size": "800x488",
                "latency": args.sweep_latency,
                "workers": args.workers,
                "processes": processes,
                "interval": args.sweep_interval,
                "detector": "local" if args.local_detector else "fake",
            }
            for processes in args.processes
        ]
    results = [measure(case, args) for case in cases]
    summary = summarise(results)
    print_results(results, summary)
    settings = {"seconds": args.seconds, "alerts": not args.no_alerts}
    common.write_results(
        "throughput", {"settings": settings, "summary": summary, "results": results}, args.output
    )
    return 0


def measure(case: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One case: a fresh service, the cameras for args.seconds, the queue sampled twice a second."""
    data = common.snapshot_jpeg(common.SIZES[case["size"]])
    load_before = common.load_average()
    local = case.get("detector") == "local"
    with common.in_process_service(
        "local" if local else "rekognition",  # a cloud detector's place, for the fake
        workers=case["workers"],
        cameras_count=case["cameras"],
        make_detector=None
        if local
        else common.FakeDetectors(case["latency"], alerts=not args.no_alerts),
        worker_processes=case.get("processes", 1),
        sections={"detector": {"threads": 1}} if local else None,
    ) as (service, mails):

        def done() -> int:
            return service.database.query("SELECT COUNT(*) FROM uploads WHERE state = 'done'")[0][0]

        def sample() -> dict[str, int]:
            return {"depth": service.queue.depth(), "done": done(), "mails": mails.drain()}

        marks: dict[str, float] = {}
        with common.Sampler(sample, 0.5) as sampler:
            run = common.run_cameras(
                service.ftp.address,
                common.cameras(case["cameras"]),
                data,
                seconds=args.seconds,
                per_camera=MAX_UPLOADS_PER_CAMERA,
                interval=case["interval"],
                processes=2,
                on_start=lambda _: marks.update(start=done(), since=time.time()),
            )
            marks["end"] = done()
            finished = service.database.query(common.FINISHED_SINCE_SQL, (marks["since"],))
        depths = [s["depth"] for _, s in sampler.samples]
        mails.drain()
    latencies = [ms for _, ms in common.finish_latencies(finished)]
    result = {
        **case,
        "snapshot_bytes": len(data),
        "accepted": len(run.accepted),
        "accepted_per_second": round(run.accepted_per_second(), 1),
        "ack_ms": common.percentiles(run.latencies_ms),
        "processed_per_second": round((marks["end"] - marks["start"]) / args.seconds, 1),
        # Received → finished (e-mail accepted by the sink), of the uploads finished in the
        # window: while the offered load exceeds the workers, mostly the wait in the queue.
        "finish_ms": common.percentiles(latencies),
        "max_depth": max(depths, default=0),
        "end_depth": depths[-1] if depths else 0,
        "mails": mails.count,
        "errors": len(run.errors),
        "first_errors": run.errors[:3],
        "load_before": load_before,
        "load_after": common.load_average(),
        "queue_depth_every_0.5s": depths,
    }
    print(
        f"{case}: accepted {result['accepted_per_second']}/s (ack p50"
        f" {result['ack_ms'].get('p50')} ms, p99 {result['ack_ms'].get('p99')} ms), processed "
        f"{result['processed_per_second']}/s (received → finished p50"
        f" {result['finish_ms'].get('p50')} ms, p99 {result['finish_ms'].get('p99')} ms), depth max"
        f" {result['max_depth']}, "
        f"errors {result['errors']}, load {load_before}",
        file=sys.stderr,
    )
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The goals: scaling of the sweep, and the accept rate while every worker was busy."""
    summary: dict[str, Any] = {}
    by_processes = {
        r["processes"]: r["processed_per_second"] for r in results if r["part"] == "processes"
    }
    if by_processes.get(1):
        summary["processes_speedup"] = {
            n: round(rate / by_processes[1], 2) for n, rate in by_processes.items()
        }
    sweep = {r["workers"]: r["processed_per_second"] for r in results if r["part"] == "sweep"}
    if sweep.get(1):
        summary["sweep_speedup"] = {w: round(rate / sweep[1], 2) for w, rate in sweep.items()}
        if 16 in sweep:
            summary["scaling_goal_met"] = sweep[16] / sweep[1] >= SCALING_GOAL
    # Cameras uploading back to back (the matrix), while every worker had an item waiting.
    busy = [
        r["accepted_per_second"]
        for r in results
        if r["part"] == "matrix" and r["interval"] == 0 and r["end_depth"] > r["workers"]
    ]
    if busy:
        summary["best_accept_rate_while_busy"] = max(busy)
        summary["accept_goal_met"] = max(busy) >= ACCEPT_GOAL_PER_SECOND
    return summary


def print_results(results: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    header = ["part", "cameras", "size", "detector s", "workers", "processes", "accepted/s"]
    header += ["ack p50 ms", "ack p99 ms", "processed/s", "finish p50 ms", "finish p99 ms"]
    header += ["max depth", "errors", "load before"]
    rows = [
        [
            r["part"],
            r["cameras"],
            r["size"],
            r["latency"],
            r["workers"],
            r.get("processes", 1),
            r["accepted_per_second"],
            r["ack_ms"].get("p50", ""),
            r["ack_ms"].get("p99", ""),
            r["processed_per_second"],
            r["finish_ms"].get("p50", ""),
            r["finish_ms"].get("p99", ""),
            r["max_depth"],
            r["errors"],
            " ".join(map(str, r["load_before"])),
        ]
        for r in results
    ]
    common.print_table(header, rows)
    print(summary)


if __name__ == "__main__":
    sys.exit(main())
