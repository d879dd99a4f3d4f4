#!/usr/bin/env python3
"""Doubled boxes and time per image of the local detector on eval/images, per model and sizes.

Each picture goes through LocalDetector.detect() and then one-name-per-object, as the service
records it. A doubled box is a pair of boxes of one family (people; vehicles; animals) where one
lies at least 90 % inside the other or they overlap at IoU 0.5 or more: issue 21's measure.
Variants: colour, greyscale and 320×240 copies (as `ipcam-analysis evaluate` makes them), and
every picture cropped to 800×488 and 1920×1080 for the time per image. `--source` runs another
checkout's `src` (the code before a change); `--model` and `--input-sizes` choose the settings.

    .venv/bin/python bench/one_box.py
    .venv/bin/python bench/one_box.py --source /tmp/before/src --label before
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "src", help="the src folder to run")
    parser.add_argument("--label", default="after", help="names the run in the JSON file")
    parser.add_argument("--model", help="the local detector's `model` (default: its default)")
    parser.add_argument("--input-sizes", type=int, nargs="+", help="the local detector's sizes")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["colour", "greyscale", "320x240", "800x488", "1920x1080"],
    )
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    sys.path[:0] = [str(args.source.resolve()), str(ROOT)]
    from bench import common

    settings: dict[str, Any] = {"type": "local"}
    if args.model:
        settings["model"] = args.model
    if args.input_sizes:
        settings["input_sizes"] = args.input_sizes
    with (common.IMAGES / "labels.csv").open(newline="", encoding="utf-8") as stream:
        files = [row["file"] for row in csv.DictReader(stream)]
    detector = _detector(settings)
    results = [_measure(detector, variant, files) for variant in args.variants]
    common.print_table(
        ["variant", "pictures", "doubled pairs", "median ms", "p90 ms"],
        [
            [r["variant"], r["pictures"], len(r["doubled"]), r["ms"]["p50"], r["ms"]["p90"]]
            for r in results
        ],
    )
    for result in results:
        for pair in result["doubled"]:
            print(f"{result['variant']}: {pair}")
    payload = {"label": args.label, "settings": settings, "results": results}
    common.write_results(f"one_box-{args.label}", payload, args.output)
    return 0


def _detector(settings: dict[str, Any]) -> Any:
    from ipcam_analysis.config import AppConfig
    from ipcam_analysis.detect import build_detector

    config = AppConfig.model_validate({"detector": settings})
    return build_detector(config.detector_settings(), config.detector_context)


def _measure(detector: Any, variant: str, files: list[str]) -> dict[str, Any]:
    from bench import common
    from ipcam_analysis.rules import one_name_per_object
    from ipcam_analysis.rules.filters import FiltersConfig

    snapshots = [_snapshot(common, variant, name) for name in files]
    detector.detect(snapshots[0])  # warm-up
    load_before = common.load_average()
    timings, doubled = [], []
    for name, snapshot in zip(files, snapshots, strict=True):
        started = time.perf_counter()
        detection = detector.detect(snapshot)
        timings.append((time.perf_counter() - started) * 1000)
        recorded = one_name_per_object(detection, FiltersConfig(), None)
        doubled += [f"{name}: {pair}" for pair in doubled_pairs(recorded.labels)]
    print(f"{variant}: {len(doubled)} doubled", file=sys.stderr)
    return {
        "variant": variant,
        "pictures": len(files),
        "doubled": doubled,
        "ms": common.percentiles(timings),
        "load_before": load_before,
    }


def _snapshot(common: Any, variant: str, name: str) -> Any:
    from PIL import Image

    from ipcam_analysis.imaging import decode_snapshot

    if variant in ("colour", "greyscale", "320x240"):
        with Image.open(common.IMAGES / name) as original:
            image = original.convert("L" if variant == "greyscale" else "RGB").convert("RGB")
        if variant == "320x240":
            image = image.resize((320, 240), Image.Resampling.LANCZOS)
        if variant == "colour":
            return decode_snapshot((common.IMAGES / name).read_bytes())
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        return decode_snapshot(buffer.getvalue())
    return decode_snapshot(common.snapshot_jpeg(common.parse_size(variant), name))


FAMILIES = (
    {"person"},
    {"bicycle", "car", "motorcycle", "bus", "train", "truck", "boat", "airplane"},
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"},
)


def doubled_pairs(labels: Any) -> list[str]:
    """Pairs of boxes of one family, one ≥ 90 % inside the other or at IoU ≥ 0.5."""
    from ipcam_analysis.rules.geometry import iou, overlap_area

    boxes = [
        (label.name, instance)
        for label in labels
        for instance in label.instances
        if any(label.name.casefold() in family for family in FAMILIES)
    ]
    found = []
    for (first, one), (second, other) in itertools.combinations(boxes, 2):
        if not any({first.casefold(), second.casefold()} <= family for family in FAMILIES):
            continue
        smaller = min(one.box.width * one.box.height, other.box.width * other.box.height)
        inside = overlap_area(one.box, other.box) / smaller if smaller > 0 else 0
        if inside >= 0.9 or iou(one.box, other.box) >= 0.5:
            found.append(
                f"{first} {one.confidence:.0f}% / {second} {other.confidence:.0f}% "
                f"(inside {inside:.2f}, IoU {iou(one.box, other.box):.2f})"
            )
    return found


if __name__ == "__main__":
    sys.exit(main())
