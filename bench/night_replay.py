#!/usr/bin/env python3
"""Night thresholds replayed: every picture detected once at a low threshold, then each setting
applied to the boxes, scored like `ipcam-analysis evaluate`.

`detect` runs the local detector at 10 % on the colour and the greyscale copies of
`eval/images` and keeps every label with its boxes (and whether the picture was taken for a
night one); `replay` applies a day threshold and a night one (global, or per label) to them and
counts what `labels: [<class>]` would alert on. Close to, not identical with, a run at that
threshold: a box below it can still have shaped the boxes kept (one box per object).

    .venv/bin/python bench/night_replay.py detect --model yolov3-tiny --sizes 416 320
    .venv/bin/python bench/night_replay.py replay bench/results/night_replay-....json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


from bench import common  # noqa: E402
from ipcam_analysis.commands.detect import read_snapshot  # noqa: E402
from ipcam_analysis.commands.evaluate import _variant  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.detect.yolo import is_night  # noqa: E402
from ipcam_analysis.rules import decide, one_name_per_object  # noqa: E402
from ipcam_analysis.rules.filters import FiltersConfig  # noqa: E402
from ipcam_analysis.values import Box, Detection, Instance, Label  # noqa: E402

CLASSES = ("person", "vehicle", "dog", "cat", "bird")
ANIMALS = ("dog", "cat", "bird")
LOW = 10.0
SMALL = 640  # pixels: --small-tiles cuts pictures whose longer side is below this
DAY = 25.0
# (name, night threshold for every label, night thresholds by label name) replayed by default.
SETTINGS: list[tuple[str, float, dict[str, float]]] = [
    ("today (25 %)", DAY, {}),
    *((f"night {t:g} %", t, {}) for t in (30, 35, 40, 45, 50)),
    *((f"night Person {t:g} %", DAY, {"Person": t}) for t in (30, 35, 40, 45, 50)),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect")
    detect.add_argument("--model", default="yolov3-tiny")
    detect.add_argument("--sizes", type=int, nargs="+", default=[416, 320])
    detect.add_argument(
        "--small-tiles", type=int, metavar="SIDE", help="cut pictures under 640 pixels in tiles"
    )
    detect.add_argument("--threshold", type=float, default=LOW, help="percent (default 10)")
    detect.add_argument("--output", type=Path)
    replay = commands.add_parser("replay")
    replay.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.command == "detect":
        return _detect(args)
    payload = json.loads(args.results.read_text(encoding="utf-8"))
    photos = {row["file"] for row in _truth() if row["origin"] == "photo"}
    for variant, pictures in payload["variants"].items():
        print(f"\n{payload['model']} {payload['sizes']}, {variant}")
        rows = []
        for name, night_all, night_by_label in SETTINGS:
            counts = score(pictures, night_all, night_by_label)
            on_photos = sum(file in photos for file in counts["person"]["false"])
            rows.append(
                [name, *(_cell(counts[c]) for c in CLASSES), on_photos, counts["false_animals"]]
            )
        common.print_table(
            ["setting", *CLASSES, "false Person on photos", "false animals /20"], rows
        )
    return 0


def _detect(args: argparse.Namespace) -> int:
    rows = _truth()
    settings = LocalDetectorConfig(model=args.model, input_sizes=tuple(args.sizes))
    detector = LocalDetector(settings, args.threshold)
    small = detector
    if args.small_tiles:
        tiled = settings.model_copy(update={"tile_min_side": 256, "tile_side": args.small_tiles})
        small = LocalDetector(tiled, args.threshold)
    variants: dict[str, list[dict[str, Any]]] = {}
    load_before = common.load_average()
    for variant, greyscale in (("colour", False), ("greyscale", True)):
        pictures = []
        for row in rows:
            snapshot = _variant(read_snapshot(common.IMAGES / row["file"]), greyscale, None)
            chosen = small if max(snapshot.width, snapshot.height) < SMALL else detector
            detection = chosen.detect(snapshot)
            pictures.append(
                {
                    "file": row["file"],
                    "truth": {name: row[name] == "1" for name in CLASSES},
                    "size": [snapshot.width, snapshot.height],
                    "night": is_night(snapshot.image),
                    "labels": [_stored(label) for label in detection.labels],
                }
            )
        variants[variant] = pictures
    payload = {
        "model": args.model,
        "sizes": args.sizes,
        "small_tiles": args.small_tiles,
        "threshold_percent": args.threshold,
        "load_before": load_before,
        "load_after": common.load_average(),
        "variants": variants,
    }
    common.write_results("night_replay", payload, args.output)
    return 0


def score(
    pictures: list[dict[str, Any]], night_all: float, night_by_label: dict[str, float]
) -> dict[str, Any]:
    """Found, present and false alarms per class; false dog, cat and bird labels per 20 pictures."""
    counts: dict[str, Any] = {c: {"found": 0, "present": 0, "false": []} for c in CLASSES}
    animal_false = 0
    for picture in pictures:
        labels = tuple(
            kept
            for stored in picture["labels"]
            if (kept := _thresholded(stored, picture["night"], night_all, night_by_label))
        )
        named = one_name_per_object(Detection("local", labels, 0), FiltersConfig(), None).labels
        for name in CLASSES:
            alerted = decide(named, [name], False).alert
            if picture["truth"][name]:
                counts[name]["present"] += 1
                counts[name]["found"] += alerted
            elif alerted:
                counts[name]["false"].append(picture["file"])
                animal_false += name in ANIMALS
    counts["false_animals"] = round(20 * animal_false / len(pictures), 2)
    return counts


def _thresholded(
    stored: dict[str, Any], night: bool, night_all: float, night_by_label: dict[str, float]
) -> Label | None:
    """The label with only its boxes at or above the threshold in force, or None."""
    needed = night_by_label.get(stored["name"], night_all) if night else DAY
    label = _label(stored)
    instances = tuple(i for i in label.instances if i.confidence >= needed)
    if not instances:
        return None
    return replace(label, confidence=instances[0].confidence, instances=instances)


def _truth() -> list[dict[str, str]]:
    with (common.IMAGES / "labels.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _stored(label: Label) -> dict[str, Any]:
    return {
        "name": label.name,
        "parents": list(label.parents),
        "aliases": list(label.aliases),
        "instances": [
            [i.confidence, i.box.left, i.box.top, i.box.width, i.box.height]
            for i in label.instances
        ],
    }


def _label(stored: dict[str, Any]) -> Label:
    instances = tuple(
        Instance(Box(left, top, width, height), confidence)
        for confidence, left, top, width, height in stored["instances"]
    )
    return Label(
        stored["name"],
        instances[0].confidence,
        tuple(stored["parents"]),
        tuple(stored["aliases"]),
        (),
        instances,
    )


def _cell(count: dict[str, Any]) -> str:
    return f"{count['found']}/{count['present']} ({len(count['false'])})"


if __name__ == "__main__":
    sys.exit(main())
