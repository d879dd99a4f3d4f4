"""Measure a detector on a folder of images with a labels.csv truth: per class, speed, memory."""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ipcam_analysis.commands.detect import UnreadableImage, read_snapshot
from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import DETECTORS, build_detector
from ipcam_analysis.detect.base import Detector
from ipcam_analysis.detect.cascade import CascadeDetectorConfig, local_stage
from ipcam_analysis.errors import UserError
from ipcam_analysis.imaging import decode_snapshot
from ipcam_analysis.rules import decide, one_name_per_object
from ipcam_analysis.values import Detection, Snapshot, WatchedLabels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path("eval/images"),
        help="folder with the images and labels.csv (default: eval/images)",
    )
    parser.add_argument(
        "--detector", choices=list(DETECTORS), help="detector kind (default: the configured one)"
    )
    parser.add_argument(
        "--greyscale", action="store_true", help="evaluate greyscale copies (night IR pictures)"
    )
    parser.add_argument(
        "--size",
        type=_size,
        metavar="WxH",
        help="evaluate copies scaled to this size, e.g. 320x240",
    )
    parser.add_argument(
        "--no-cloud",
        action="store_true",
        help="cascade only: run the local stage and count the Rekognition calls it would make",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


@dataclass
class ClassScore:
    """How one truth class fared: a hit is an alert for a `labels: [<class>]` configuration."""

    present: int = 0
    found: int = 0
    absent: int = 0
    false_alarms: int = 0
    # Present and sent to Rekognition: what a cascade can find if Rekognition confirms it.
    sent_to_cloud: int = 0
    missed_images: list[str] = field(default_factory=list)
    false_alarm_images: list[str] = field(default_factory=list)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    truth_file = args.folder / "labels.csv"
    rows, classes = read_truth(truth_file)
    camera = config.camera("")  # the global settings, as `detect` without --camera
    kind = args.detector or camera.detector
    settings = config.detector_settings(kind)
    detector: Detector
    if not args.no_cloud:
        detector = build_detector(settings, config.detector_context)
    elif isinstance(settings, CascadeDetectorConfig):
        detector = _ScreeningOnly(settings)
    else:
        raise UserError("--no-cloud only applies to --detector cascade")
    scores = {name: ClassScore() for name in classes}
    timings: list[float] = []
    cloud_calls = 0
    try:
        for row in rows:
            snapshot = _variant(read_snapshot(args.folder / row["file"]), args.greyscale, args.size)
            started = time.perf_counter()
            detection = detector.detect(snapshot, config.watched_labels())
            timings.append((time.perf_counter() - started) * 1000)
            cloud_calls += detection.cloud_calls
            # Each object under one name, as the service decides on it.
            named = one_name_per_object(detection, camera.filters, camera.min_confidence_percent)
            for name in classes:
                alerted = decide(named.labels, [name], False).alert
                _score(scores[name], row, name, alerted, detection.cloud_calls > 0)
    except UnreadableImage as exc:
        raise UserError(f"{args.folder / row['file']}: {exc}") from None
    finally:
        detector.close()
    variant = _describe_variant(args.greyscale, args.size)
    summary = {
        "detector": kind + (" (local stage only)" if args.no_cloud else ""),
        "folder": str(args.folder),
        "variant": variant,
        "images": len(rows),
        "classes": {name: vars(score) for name, score in scores.items()},
        "ms_median": round(statistics.median(timings), 1),
        "ms_p90": round(_p90(timings), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cloud_calls": cloud_calls,
        "cloud_calls_rekognition_alone": len(rows),
    }
    print(json.dumps(summary) if args.json else format_table(summary))
    return 0


def read_truth(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The rows, and the truth classes: every column holding only 0 and 1."""
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the truth file ({exc.strerror or exc})") from None
    if not rows or "file" not in rows[0]:
        raise UserError(f"{path}: expected a CSV with a `file` column and one 0/1 column per class")
    classes = [c for c in rows[0] if c != "file" and all(r[c] in ("0", "1") for r in rows)]
    if not classes:
        raise UserError(f"{path}: no class columns (columns holding only 0 and 1)")
    return rows, classes


def format_table(summary: dict[str, Any]) -> str:
    images = summary["images"]
    # Only a cascade can send a picture to the cloud: what it can find if Rekognition confirms.
    cascade = summary["detector"].startswith("cascade")
    lines = [
        f"{summary['detector']} on {summary['folder']} ({images} images, {summary['variant']})",
        f"{'class':<10} {'found/present':>14} {'false alarms/absent':>20}"
        + (f" {'sent to cloud':>14}" if cascade else ""),
    ]
    for name, score in summary["classes"].items():
        present = score["present"]
        found = f"{score['found']}/{present}" + _percent(score["found"], present)
        alarms = f"{score['false_alarms']}/{score['absent']}"
        sent = f"{score['sent_to_cloud']}/{present}" + _percent(score["sent_to_cloud"], present)
        lines.append(f"{name:<10} {found:>14} {alarms:>20}" + (f" {sent:>14}" if cascade else ""))
    lines.append(
        f"per image: median {summary['ms_median']} ms, p90 {summary['ms_p90']} ms; "
        f"peak RSS {summary['peak_rss_mb']} MB; cloud calls {summary['cloud_calls']} "
        f"(rekognition alone: {summary['cloud_calls_rekognition_alone']})"
    )
    for name, score in summary["classes"].items():
        if score["missed_images"]:
            lines.append(f"missed {name}: {', '.join(score['missed_images'])}")
        if score["false_alarm_images"]:
            lines.append(f"false {name}: {', '.join(score['false_alarm_images'])}")
    return "\n".join(lines)


def _score(
    score: ClassScore, row: dict[str, str], name: str, alerted: bool, sent_to_cloud: bool
) -> None:
    if row[name] == "1":
        score.present += 1
        score.found += alerted
        score.sent_to_cloud += sent_to_cloud
        if not alerted:
            score.missed_images.append(row["file"])
    else:
        score.absent += 1
        score.false_alarms += alerted
        if alerted:
            score.false_alarm_images.append(row["file"])


class _ScreeningOnly:
    """A cascade's local stage alone: its labels, and cloud_calls = the call it would make."""

    kind = "cascade"

    def __init__(self, settings: CascadeDetectorConfig) -> None:
        self._local, self._gate = local_stage(settings)

    def detect(self, snapshot: Snapshot, watched: WatchedLabels) -> Detection:
        seen = self._local.detect(snapshot)
        kept, reason = self._gate.screen(seen.labels, watched)
        return Detection(self.kind, kept, seen.elapsed_ms, cloud_calls=int(reason is not None))

    def close(self) -> None:
        self._local.close()


def _variant(snapshot: Snapshot, greyscale: bool, size: tuple[int, int] | None) -> Snapshot:
    """The picture as such a camera would upload it: converted, re-encoded as JPEG, decoded."""
    if not greyscale and size is None:
        return snapshot
    image = snapshot.image
    if greyscale:
        image = image.convert("L").convert("RGB")
    if size is not None:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return decode_snapshot(buffer.getvalue())


def _describe_variant(greyscale: bool, size: tuple[int, int] | None) -> str:
    parts = (["greyscale"] if greyscale else ["colour"]) + (
        [f"{size[0]}×{size[1]}"] if size else []
    )
    return ", ".join(parts)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 320x240") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("width and height must be at least 16 pixels")
    return width, height


def _p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


def _percent(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.0f}%)" if whole else ""
