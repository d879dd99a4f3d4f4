#!/usr/bin/env python3
"""Ingest sources: N cameras uploading back to back over FTP, FTPS (AUTH TLS, PROT P, the
service's self-signed certificate), HTTP push and e-mail (SMTP, one picture per message, AUTH
LOGIN without TLS as cameras do), while every worker is busy (a fake detector of
fixed latency, so the queue grows); per source, the uploads accepted per second and the latency
of the acknowledgement (226/201/250: from sending STOR, the POST or DATA to reading the answer;
the answer goes out only once the upload's queue row is committed).

    .venv/bin/python bench/ingest_sources.py                    # 10 cameras, 15 s per source
    .venv/bin/python bench/ingest_sources.py --cameras 50 --seconds 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402

SOURCES = ["ftp", "ftps", "http", "smtp"]
MAX_UPLOADS_PER_CAMERA = 100_000  # a bound; the time limit ends each case first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=SOURCES)
    parser.add_argument("--seconds", type=float, default=15.0, help="upload window per source")
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--size", choices=list(common.SIZES), default="800x488")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.2, help="the fake detector's seconds")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    common.exit_on_sigterm()
    results = [measure(kind, args) for kind in args.sources]
    header = ["source", "cameras", "accepted/s", "ack p50 ms", "ack p99 ms", "max depth", "errors"]
    rows = [
        [
            r["source"],
            r["cameras"],
            r["accepted_per_second"],
            r["ack_ms"].get("p50", "-"),
            r["ack_ms"].get("p99", "-"),
            r["max_depth"],
            r["errors"],
        ]
        for r in results
    ]
    common.print_table(header, rows)
    settings = {k: getattr(args, k) for k in ("seconds", "cameras", "size", "workers", "latency")}
    common.write_results("ingest_sources", {"settings": settings, "results": results}, args.output)
    return 0


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One source: a fresh service with that listener, the cameras for args.seconds."""
    data = common.snapshot_jpeg(common.SIZES[args.size])
    sections: dict[str, Any] = {}
    if kind == "http":
        sections["http_ingest"] = {"enabled": True, "host": common.LOOPBACK, "port": 0}
    if kind == "smtp":
        sections["smtp_server"] = {"enabled": True, "host": common.LOOPBACK, "port": 0}
    if kind == "ftps":  # the certificate: self-signed, made in the data folder at start
        sections["ftp_server"] = {"tls": {"mode": "required"}}
    load_before = common.load_average()
    with common.in_process_service(
        "rekognition",  # replaced by the fake; a cloud detector's place
        workers=args.workers,
        cameras_count=args.cameras,
        make_detector=common.FakeDetectors(args.latency, alerts=False),
        sections=sections,
    ) as (service, _mails):
        address = service.sources["ftp" if kind == "ftps" else kind].address
        with common.Sampler(lambda: service.queue.depth(), 0.5) as sampler:
            run = common.run_cameras(
                address,
                common.cameras(args.cameras),
                data,
                seconds=args.seconds,
                per_camera=MAX_UPLOADS_PER_CAMERA,
                kind=kind,
            )
        depths = [depth for _, depth in sampler.samples]
    result = {
        "source": kind,
        "cameras": args.cameras,
        "snapshot_bytes": len(data),
        "accepted": len(run.accepted),
        "accepted_per_second": round(run.accepted_per_second(), 1),
        "ack_ms": common.percentiles(run.latencies_ms),
        "max_depth": max(depths, default=0),
        "errors": len(run.errors),
        "first_errors": run.errors[:3],
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    print(f"{kind}: {result}", file=sys.stderr)
    return result


if __name__ == "__main__":
    sys.exit(main())
