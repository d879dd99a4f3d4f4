#!/usr/bin/env python3
"""YOLOv3-tiny and YOLOv4-tiny fused by weighted box fusion, scored like `ipcam-analysis evaluate`.

Each model runs its passes at a low threshold (10 %); boxes of one class from the two models
that overlap (IoU ≥ 0.55) become one box, its corners averaged by score and its score the sum of
each model's best over the two models (a box only one model saw keeps half its score); fused
boxes from 25 % go through the local detector's one-box-per-object, and a class counts as
found when the labels alert `labels: [<class>]`. Issue 21 asked whether fusion beats either
model alone; `evaluate` cannot run it because it is no setting of the product.

    .venv/bin/python bench/fusion.py [--greyscale | --size 320x240] [--sizes 416 320]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import numpy as np  # noqa: E402

from bench import common  # noqa: E402
from ipcam_analysis.commands.detect import read_snapshot  # noqa: E402
from ipcam_analysis.commands.evaluate import _size, _variant  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.detect.yolo import Sighting, is_night  # noqa: E402
from ipcam_analysis.rules import decide  # noqa: E402

CLASSES = ("person", "vehicle", "dog", "cat", "bird")
FUSE_IOU = 0.55
LOW, THRESHOLD = 0.10, 0.25


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--greyscale", action="store_true")
    parser.add_argument("--size", type=_size)
    parser.add_argument("--sizes", type=int, nargs="+", default=[416, 320])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with (common.IMAGES / "labels.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    detectors = [
        LocalDetector(LocalDetectorConfig(model=model, input_sizes=tuple(args.sizes)), LOW * 100)
        for model in ("yolov3-tiny", "yolov4-tiny")
    ]
    found = dict.fromkeys(CLASSES, 0)
    present = dict.fromkeys(CLASSES, 0)
    false = {name: [] for name in CLASSES}
    timings = []
    for row in rows:
        snapshot = _variant(read_snapshot(common.IMAGES / row["file"]), args.greyscale, args.size)
        image = snapshot.image.convert("RGB")
        started = time.perf_counter()
        night = is_night(image)
        per_model = [detector._network.find(image, night=night) for detector in detectors]
        labels = detectors[1]._labels_from(fused(per_model))
        timings.append((time.perf_counter() - started) * 1000)
        for name in CLASSES:
            alerted = decide(labels, [name], False).alert
            if row[name] == "1":
                present[name] += 1
                found[name] += alerted
            elif alerted:
                false[name].append(row["file"])
    common.print_table(
        ["class", "found/present", "false alarms"],
        [[name, f"{found[name]}/{present[name]}", len(false[name])] for name in CLASSES],
    )
    print(f"median {statistics.median(timings):.0f} ms; false: {false}")
    payload = {
        "variant": {"greyscale": args.greyscale, "size": args.size, "sizes": args.sizes},
        "found": found,
        "present": present,
        "false_alarm_images": false,
        "ms": common.percentiles(timings),
    }
    common.write_results("fusion", payload, args.output)
    return 0


def fused(per_model: list[list[Sighting]]) -> list[Sighting]:
    """Weighted box fusion of each model's sightings, class by class."""
    clusters: list[dict[str, Any]] = []
    every = sorted(
        ((index, s) for index, found in enumerate(per_model) for s in found),
        key=lambda pair: -pair[1].score,
    )
    for model_index, sighting in every:
        corners = np.array([sighting.left, sighting.top, sighting.right, sighting.bottom])
        cluster = next(
            (
                c
                for c in clusters
                if c["class_id"] == sighting.class_id and _iou(c["box"], corners) >= FUSE_IOU
            ),
            None,
        )
        if cluster is None:
            cluster = {"class_id": sighting.class_id, "box": corners, "members": []}
            clusters.append(cluster)
        cluster["members"].append((model_index, sighting.score, corners))
        weights = np.array([score for _, score, _ in cluster["members"]])
        boxes = np.array([box for _, _, box in cluster["members"]])
        cluster["box"] = (boxes * weights[:, None]).sum(0) / weights.sum()
    result = []
    for cluster in clusters:
        best = {}
        for model_index, score, _ in cluster["members"]:
            best[model_index] = max(best.get(model_index, 0.0), score)
        score = sum(best.values()) / len(per_model)
        if score >= THRESHOLD:
            result.append(Sighting(cluster["class_id"], score, *map(float, cluster["box"])))
    return result


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    inter = max(0.0, width) * max(0.0, height)
    union = np.prod(first[2:] - first[:2]) + np.prod(second[2:] - second[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


if __name__ == "__main__":
    sys.exit(main())
