#!/usr/bin/env python3
"""Milliseconds per image of local detector settings side by side, interleaved picture by picture.

This VM's speed drifts by up to 2.4× within an hour and other jobs share its 2 cores, so settings
timed one after the other are not comparable. Here each picture goes through every setting in
turn (the order rotating), so all of them meet the same load; the ratio of medians is the figure
to read. Each setting is `model:size,size` (input sizes), e.g. `yolov3-tiny:416,320`, optionally
with `:MIN/SIDE` for tiles of SIDE pixels from MIN pixels on, e.g. `yolov3-tiny:416,320:256/160`.

    .venv/bin/python bench/model_time.py
    .venv/bin/python bench/model_time.py --settings yolov3-tiny:416,320 yolov4-tiny:416,256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.imaging import decode_snapshot  # noqa: E402

DEFAULT_SETTINGS = ["yolov3-tiny:416,320", "yolov4-tiny:416,320", "yolov4-tiny:416,256"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    parser.add_argument("--sizes", nargs="+", default=["800x488", "1920x1080"])
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the photos")
    parser.add_argument("--limit", type=int, help="only the first N photos (by name)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    detectors = {setting: _detector(setting) for setting in args.settings}
    photos = sorted(path.name for path in common.IMAGES.glob("*.jpg"))[: args.limit]
    results = []
    for size in args.sizes:
        snapshots = [
            decode_snapshot(common.snapshot_jpeg(common.parse_size(size), photo))
            for photo in photos
        ]
        for detector in detectors.values():
            detector.detect(snapshots[0])  # warm-up
        load_before = common.load_average()
        timings: dict[str, list[float]] = {setting: [] for setting in detectors}
        turn = 0
        for _ in range(args.rounds):
            for snapshot in snapshots:
                turn += 1
                order = (
                    list(detectors)[turn % len(detectors) :]
                    + list(detectors)[: turn % len(detectors)]
                )
                for setting in order:
                    started = time.perf_counter()
                    detectors[setting].detect(snapshot)
                    timings[setting].append((time.perf_counter() - started) * 1000)
        base = statistics.median(timings[args.settings[0]])
        for setting, values in timings.items():
            stats = common.percentiles(values)
            results.append(
                {
                    "size": size,
                    "setting": setting,
                    "ms": stats,
                    "ratio_to_first": round(statistics.median(values) / base, 2),
                    "load_before": load_before,
                }
            )
    common.print_table(
        ["size", "setting", "n", "median ms", "p90 ms", "× first"],
        [
            [
                r["size"],
                r["setting"],
                r["ms"]["n"],
                r["ms"]["p50"],
                r["ms"]["p90"],
                r["ratio_to_first"],
            ]
            for r in results
        ],
    )
    common.write_results("model_time", {"photos": len(photos), "results": results}, args.output)
    return 0


def _detector(setting: str) -> LocalDetector:
    model, _, rest = setting.partition(":")
    sizes, _, tiles = rest.partition(":")
    input_sizes = tuple(int(size) for size in sizes.split(",")) if sizes else (416, 320)
    settings = LocalDetectorConfig(model=model, input_sizes=input_sizes)
    if tiles:  # MIN/SIDE: tile a picture from MIN pixels on, in tiles of SIDE pixels
        tile_min_side, _, tile_side = tiles.partition("/")
        settings = settings.model_copy(
            update={"tile_min_side": int(tile_min_side), "tile_side": int(tile_side)}
        )
    return LocalDetector(settings, 25)


if __name__ == "__main__":
    sys.exit(main())
