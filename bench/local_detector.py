#!/usr/bin/env python3
"""The local detector (YOLOv3-tiny on onnxruntime): milliseconds per image at 320×240, 800×488
and 1920×1080, with 1 and 2 threads (`detector: {threads: N}`).

Every photo of eval/images is cropped to the size's aspect and resized to it, decoded once, then
given to LocalDetector.detect() (the default settings: passes at 416 and 320) --rounds times
after --warmup untimed calls. The time is detect()'s own: resizing to the network, inference,
decoding the boxes.

    .venv/bin/python bench/local_detector.py
    .venv/bin/python bench/local_detector.py --threads 2 --sizes 800x488 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.imaging import decode_snapshot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", choices=list(common.SIZES), default=list(common.SIZES)
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the photos")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    photos = sorted(path.name for path in common.IMAGES.glob("*.jpg"))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as folder:
        cache = common.MODEL_CACHE if common.MODEL_CACHE.is_dir() else Path(folder)
        for threads in args.threads:
            detector = LocalDetector(
                LocalDetectorConfig(threads=threads, model_cache_dir=cache), 25
            )
            for size in args.sizes:
                results.append(measure(detector, threads, size, photos, args))
    common.print_table(
        ["size", "threads", "n", "median ms", "p90 ms", "mean ms", "max ms", "load before"],
        [
            [
                r["size"],
                r["threads"],
                *(r["ms"][key] for key in ("n", "p50", "p90", "mean", "max")),
                " ".join(map(str, r["load_before"])),
            ]
            for r in results
        ],
    )
    settings = {"photos": len(photos), "rounds": args.rounds, "input_sizes": [416, 320]}
    common.write_results("local_detector", {"settings": settings, "results": results}, args.output)
    return 0


def measure(
    detector: LocalDetector, threads: int, size: str, photos: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    snapshots = [
        decode_snapshot(common.snapshot_jpeg(common.SIZES[size], photo)) for photo in photos
    ]
    for snapshot in snapshots[: args.warmup]:
        detector.detect(snapshot)
    load_before = common.load_average()
    timings = []
    for _ in range(args.rounds):
        for snapshot in snapshots:
            started = time.perf_counter()
            detector.detect(snapshot)
            timings.append((time.perf_counter() - started) * 1000)
    stats = common.percentiles(timings)
    print(f"{size} × {threads} thread(s): {stats}", file=sys.stderr)
    return {"size": size, "threads": threads, "ms": stats, "load_before": load_before}


if __name__ == "__main__":
    sys.exit(main())
