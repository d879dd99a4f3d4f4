#!/usr/bin/env python3
"""What tiles find and cost: the local detector with `tiles: off` and `tiles: auto` on large
snapshots (1920×1080 and 2560×1440), pictures found per class and milliseconds per image.

Every picture of eval/images is cropped to 16:9 and resized to the size (as a camera with that
sensor would send it), decoded once, then given to LocalDetector.detect() at 25 % with 2
threads. A class counts as found when the labels would alert `labels: [<class>]`, as
`ipcam-analysis evaluate` counts it; a centre crop can cut an object off, so the counts compare
the two settings with each other, not with labels.csv's totals.

    .venv/bin/python bench/local_tiles.py
    .venv/bin/python bench/local_tiles.py --sizes 1920x1080 --limit 30
"""

from __future__ import annotations

import argparse
import csv
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
from ipcam_analysis.rules import decide  # noqa: E402

CLASSES = ("person", "vehicle", "dog", "cat", "bird")
LARGE = {"1920x1080": (1920, 1080), "2560x1440": (2560, 1440)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=list(LARGE), default=list(LARGE))
    parser.add_argument("--limit", type=int, help="only the first N pictures of labels.csv")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    with (common.IMAGES / "labels.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[: args.limit]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as folder:
        cache = common.MODEL_CACHE if common.MODEL_CACHE.is_dir() else Path(folder)
        detectors = {
            tiles: LocalDetector(LocalDetectorConfig(tiles=tiles, model_cache_dir=cache), 25)
            for tiles in ("off", "auto")
        }
        for size in args.sizes:
            snapshots = [
                decode_snapshot(common.snapshot_jpeg(LARGE[size], row["file"])) for row in rows
            ]
            for tiles, detector in detectors.items():
                results.append(measure(detector, size, tiles, snapshots, rows))
    common.print_table(
        ["size", "tiles", "n", "median ms", "p90 ms", *(f"{c} found" for c in CLASSES)],
        [
            [r["size"], r["tiles"], r["ms"]["n"], r["ms"]["p50"], r["ms"]["p90"]]
            + [f"{r['found'][c]}/{r['present'][c]}" for c in CLASSES]
            for r in results
        ],
    )
    settings = {"pictures": len(rows), "threshold_percent": 25, "threads": 2}
    common.write_results("local_tiles", {"settings": settings, "results": results}, args.output)
    return 0


def measure(
    detector: LocalDetector, size: str, tiles: str, snapshots: list[Any], rows: list[dict]
) -> dict[str, Any]:
    detector.detect(snapshots[0])  # warm-up
    load_before = common.load_average()
    timings = []
    found = dict.fromkeys(CLASSES, 0)
    present = dict.fromkeys(CLASSES, 0)
    for snapshot, row in zip(snapshots, rows, strict=True):
        started = time.perf_counter()
        detection = detector.detect(snapshot)
        timings.append((time.perf_counter() - started) * 1000)
        for name in CLASSES:
            if row[name] == "1":
                present[name] += 1
                found[name] += decide(detection.labels, [name], False).alert
    stats = common.percentiles(timings)
    print(f"{size} tiles {tiles}: {stats} found {found}", file=sys.stderr)
    return {
        "size": size,
        "tiles": tiles,
        "ms": stats,
        "found": found,
        "present": present,
        "load_before": load_before,
    }


if __name__ == "__main__":
    sys.exit(main())
