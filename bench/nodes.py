#!/usr/bin/env python3
"""Many nodes: alerts per second and latency with 1, 2 and 4 worker NODES (each a separate
`--role worker` process, --workers threads, one process) behind one `--role ingest` node, all on
one throw-away PostgreSQL database (harness/postgres.py), on this one machine.

Each case runs twice on fresh nodes and a fresh database:
- saturated: 10 cameras offer 100 uploads/s over FTP (each every 0.1 s) for --seconds; the
  alerts processed per second are what the nodes can take. Latency here is mostly the wait in
  a growing queue, so it grows with --seconds.
- half load: the cameras paced to half the alerts/s the saturated run measured; the latency of
  an upload when the nodes keep up.
Latency is read from the database: an upload's received_at (taken by the ingest node as the file
is complete, just before its row commits and the camera gets its 226) to its finished_at (set by
the worker after the SMTP sink accepted the alert's e-mail and the event was recorded); one
clock, one machine. Every upload alerts and is e-mailed to a real aiosmtpd sink on loopback.

Detectors: a fake cloud answering a person after --latency s (bench/common.py's, injected by the
bench-only entry point bench/node.py), or with --local-detector the real local detector, one
worker thread and one onnxruntime thread per node. `--backend sqlite` runs the same cases on one
node with every role and 1, 2, 4 `worker_processes` instead, for comparison.

    .venv/bin/python bench/nodes.py                          # fake 0.2 s cloud
    .venv/bin/python bench/nodes.py --local-detector         # real local detector
    .venv/bin/python bench/nodes.py --backend sqlite         # worker processes of one node
    .venv/bin/python bench/nodes.py --storage s3             # pictures in moto's S3

`--storage s3` sets IPCAM_STORAGE_URL to a bucket (a prefix per run) on a moto server the bench
starts in a child process: the nodes keep uploads in flight and snapshots there (`storage.url`,
merged in 4f222b4; a service before it ignores the variable and keeps local files).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import cluster, common  # noqa: E402

MAX_UPLOADS_PER_CAMERA = 100_000  # a bound; the time limit ends each run first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker-nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--seconds", type=float, default=20.0, help="upload window per run")
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.1, help="a camera's seconds, saturated")
    parser.add_argument("--workers", type=int, help="threads per node (8; 1 with the local one)")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake detector's seconds")
    parser.add_argument("--local-detector", action="store_true")
    parser.add_argument("--size", choices=list(common.SIZES), default="800x488")
    parser.add_argument("--no-half-load", action="store_true", help="saturated runs only")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    workers = args.workers or (1 if args.local_detector else 8)
    data = common.snapshot_jpeg(common.SIZES[args.size])
    results: list[dict[str, Any]] = []
    with cluster.servers(args.backend, args.storage) as shared:
        for count in args.worker_nodes:
            sqlite = args.backend == "sqlite"
            layout = cluster.Layout(
                cameras=args.cameras,
                worker_nodes=0 if sqlite else count,
                workers=workers,
                worker_processes=count if sqlite else 1,
                detector="local" if args.local_detector else "fake",
                latency=args.latency,
            )
            saturated = measure(shared, layout, data, args.interval, args.seconds)
            results.append({"count": count, "pass": "saturated", **saturated})
            rate = saturated["alerts_per_second"]
            if not args.no_half_load and rate > 0:
                half = measure(shared, layout, data, args.cameras / (rate / 2), args.seconds)
                results.append({"count": count, "pass": "half load", **half})
    summary = summarise(results)
    print_results(results, args.backend, summary)
    settings = {k: v for k, v in vars(args).items() if k != "output"} | {"workers": workers}
    common.write_results(
        f"nodes-{args.backend}-{'local' if args.local_detector else 'fake'}",
        {"settings": settings, "summary": summary, "results": results},
        args.output,
    )
    return 0


def measure(
    shared: cluster.Servers,
    layout: cluster.Layout,
    data: bytes,
    interval: float,
    seconds: float,
) -> dict[str, Any]:
    """Fresh nodes, the cameras uploading every `interval` s for `seconds`; what they did."""
    load_before = common.load_average()
    with cluster.deployment(shared, layout, f"case-{time.monotonic_ns()}") as nodes:
        start: dict[str, Any] = {}

        def on_start(_: float) -> None:
            start.update(done=nodes.done(), mails=shared.mails.count, cpu=nodes.cpu_seconds())
            start.update(jiffies=cluster.machine_jiffies(), since=time.time())
            start.update(transactions=nodes.transactions())

        run = common.run_cameras(
            nodes.address,
            common.cameras(layout.cameras),
            data,
            seconds=seconds,
            per_camera=MAX_UPLOADS_PER_CAMERA,
            interval=interval,
            on_start=on_start,
            spread=True,
        )
        until, done, depth = time.time(), nodes.done(), nodes.depth()
        cpu, jiffies, mails = nodes.cpu_seconds(), cluster.machine_jiffies(), shared.mails.count
        finished = [ms for at, ms in nodes.finished_since(start["since"]) if at <= until]
        transactions = nodes.transactions()
    elapsed = until - start["since"]
    result = {
        "worker_nodes": layout.worker_nodes,
        "worker_processes": layout.worker_processes,
        "workers": layout.workers,
        "detector": layout.detector,
        "offered_per_second": round(layout.cameras / interval, 1),
        "seconds": round(elapsed, 1),
        "accepted_per_second": round(len(run.accepted) / elapsed, 1),
        "alerts_per_second": round((done - start["done"]) / elapsed, 1),
        "mails_per_second": round((mails - start["mails"]) / elapsed, 1),
        "finish_ms": common.percentiles(finished),
        "ack_ms": common.percentiles(run.latencies_ms),
        "end_depth": depth,
        # PostgreSQL's count (flushed by each backend about once a second): the bench's own
        # few reads are included.
        "transactions_per_upload": round(
            (transactions - start["transactions"]) / (done - start["done"]), 1
        )
        if transactions is not None and done > start["done"]
        else None,
        "errors": len(run.errors),
        "first_errors": run.errors[:3],
        "cores": cluster.cores_used(start["cpu"], cpu, elapsed),
        **cluster.busy_cores(start["jiffies"], jiffies),
        "load_before": load_before,
        "reference_loop_ms": common.reference_loop_ms(),
    }
    print(
        f"{layout.worker_nodes or layout.worker_processes} x {layout.detector}, offered"
        f" {result['offered_per_second']}/s: {result['alerts_per_second']} alerts/s, finish p50"
        f" {result['finish_ms'].get('p50')} ms p99 {result['finish_ms'].get('p99')} ms, busy"
        f" {result['busy_cores']} cores, errors {result['errors']}, load {load_before}",
        file=sys.stderr,
    )
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Alerts/s of each count, saturated, against one node (or process)."""
    rates = {r["count"]: r["alerts_per_second"] for r in results if r["pass"] == "saturated"}
    first = rates.get(min(rates, default=0))
    return {
        "alerts_per_second": rates,
        "speedup": {n: round(rate / first, 2) for n, rate in rates.items()} if first else {},
    }


def print_results(results: list[dict[str, Any]], backend: str, summary: dict[str, Any]) -> None:
    unit = "worker nodes" if backend == "postgresql" else "worker processes"
    header = [unit, "pass", "offered/s", "accepted/s", "alerts/s", "finish p50 ms"]
    header += ["finish p99 ms", "226 p99 ms", "busy cores", "ingest", "workers", "postgresql"]
    header += ["cameras+sink+moto", "others", "errors", "load before"]
    rows = []
    for r in results:
        cores = r["cores"]
        worker_cores = sum(v for k, v in cores.items() if k.startswith("worker"))
        others = round(r["busy_cores"] - cores["all"], 2)
        rows.append(
            [
                r["count"],
                r["pass"],
                r["offered_per_second"],
                r["accepted_per_second"],
                r["alerts_per_second"],
                r["finish_ms"].get("p50", ""),
                r["finish_ms"].get("p99", ""),
                r["ack_ms"].get("p99", ""),
                r["busy_cores"],
                cores.get("ingest", ""),
                round(worker_cores, 2),
                cores.get("postgresql", ""),
                cores["cameras, sink, moto"],
                others,
                r["errors"],
                " ".join(map(str, r["load_before"])),
            ]
        )
    common.print_table(header, rows)
    print(summary)


if __name__ == "__main__":
    sys.exit(main())
