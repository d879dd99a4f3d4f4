#!/usr/bin/env python3
"""One benchmark node: `ipcam-analysis --role ...` as the CLI starts it, except that with
`--fake-latency` its detectors are bench/common.py's fake cloud (a CLI flag for that would put
benchmark code in the product). Started by bench/cluster.py; prints `READY` once it serves.

    .venv/bin/python bench/node.py -c config.yaml --role worker --fake-latency 0.2
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.config import load_config  # noqa: E402
from ipcam_analysis.service.app import build_service  # noqa: E402
from ipcam_analysis.values import ROLES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--role", default=",".join(ROLES), help="comma-separated, as the CLI's")
    parser.add_argument("--fake-latency", type=float, help="seconds of the fake detector")
    parser.add_argument("--no-alerts", action="store_true", help="the fake detector sees nothing")
    args = parser.parse_args()
    # As the CLI: the environment (IPCAM_DATABASE_URL, IPCAM_STORAGE_URL) overrides the file.
    config = load_config(args.config)
    fake = (
        None
        if args.fake_latency is None
        else common.FakeDetectors(args.fake_latency, alerts=not args.no_alerts)
    )
    service = build_service(config, roles=args.role.split(","), make_detector=fake)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    service.start()
    ftp = service.sources.get("ftp")
    print("READY", *(ftp.address if ftp else ()), flush=True)
    try:
        stop.wait()  # set by SIGTERM or SIGINT
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
