"""Run a detector on image files and print what the service would record for them (text or JSON
lines), optionally boxed; `--raw` prints the detector's own answer instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ipcam_analysis.config import AppConfig, CameraSettings
from ipcam_analysis.detect import DETECTORS, DetectorError, build_detector
from ipcam_analysis.errors import UserError
from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    draw_boxes,
    encode_jpeg,
)
from ipcam_analysis.rules import one_name_per_object
from ipcam_analysis.values import Detection, Instance, Label, MatchedLabel, Snapshot


class UnreadableImage(Exception):
    """An image file that cannot be analysed; the message is one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="JPEG or PNG files")
    parser.add_argument(
        "--detector",
        choices=list(DETECTORS),
        help="detector kind (default: the camera's, else the configured one)",
    )
    parser.add_argument(
        "--camera",
        metavar="NAME",
        help="analyse as for this camera: its detector, filters and min_confidence_percent"
        " (default: the global settings)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="print the detector's own answer, before boxes of one object are merged under one"
        " name as the service does",
    )
    parser.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT_DIR",
        help="also write each picture with its boxes to OUT_DIR/NAME.jpg",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per image and per line"
    )


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """0 when every image was analysed, 1 when any could not be."""
    camera = _camera(config, args.camera)
    settings = config.detector_settings(args.detector or camera.detector)
    detector = build_detector(settings, config.detector_context)
    failed = 0
    try:
        for path in args.images:
            try:
                snapshot = read_snapshot(path)
                detection = detector.detect(snapshot, config.watched_labels())
            except (UnreadableImage, DetectorError) as exc:
                failed += 1
                _report_failure(path, str(exc), as_json=args.json)
                continue
            if not args.raw:  # as the service records it, from the same function
                detection = one_name_per_object(
                    detection, camera.filters, camera.min_confidence_percent
                )
            if args.json:
                print(json.dumps(as_json(path, detection), ensure_ascii=False), flush=True)
            else:
                print(describe(path, detection), flush=True)
            if args.annotate:
                _write_annotated(args.annotate, path, snapshot, detection.labels)
    finally:
        detector.close()
    return 1 if failed else 0


def _camera(config: AppConfig, name: str | None) -> CameraSettings:
    """The settings the service would analyse this camera's uploads with; the global ones
    (those of a camera without overrides) when no camera is named."""
    if name is not None and name not in config.camera_names:
        known = ", ".join(config.camera_names) or "none"
        raise UserError(f"--camera {name}: no such camera in the configuration (cameras: {known})")
    return config.camera(name or "")


def read_snapshot(path: Path) -> Snapshot:
    """The file decoded as a camera upload would be, or UnreadableImage saying why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read the file ({exc.strerror or exc})") from None
    try:
        return decode_snapshot(data)
    except (NotAnImageError, CorruptImageError) as exc:
        raise UnreadableImage(str(exc)) from None


def as_json(path: Path, detection: Detection) -> dict[str, object]:
    """One entry per instance (box relative to the image); `box` is null for image-level labels.
    `runner_ups`: the other classes of an object merged under this name."""
    entries: list[dict[str, object]] = []
    for label in detection.labels:
        common: dict[str, object] = {"name": label.name, "parents": list(label.parents)}
        if not label.instances:
            entries.append(
                {**common, "confidence": round(label.confidence, 1), "box": None, "runner_ups": []}
            )
        for instance in label.instances:
            box = instance.box
            entries.append(
                {
                    **common,
                    "confidence": round(instance.confidence, 1),
                    "box": {
                        "left": round(box.left, 4),
                        "top": round(box.top, 4),
                        "width": round(box.width, 4),
                        "height": round(box.height, 4),
                    },
                    "runner_ups": [
                        {"name": other.name, "confidence": round(other.confidence, 1)}
                        for other in instance.runner_ups
                    ],
                }
            )
    return {
        "image": str(path),
        "detector": detection.detector,
        "ms": round(detection.elapsed_ms),
        "cloud_calls": detection.cloud_calls,
        "labels": entries,
    }


def describe(path: Path, detection: Detection) -> str:
    """A heading line for the image, then one line per instance or image-level label."""
    lines = [
        f"{path}: {detection.detector}, {detection.elapsed_ms:.0f} ms"
        + (f", {detection.cloud_calls} cloud call(s)" if detection.cloud_calls else "")
    ]
    for label in detection.labels:
        lines += [f"  {line}" for line in _label_lines(label)]
    if not detection.labels:
        lines.append("  nothing found")
    return "\n".join(lines)


def _label_lines(label: Label) -> list[str]:
    name = f"{label.name} ({', '.join(label.parents)})" if label.parents else label.name
    if not label.instances:
        return [f"{name} {label.confidence:.1f}% (whole image)"]
    return [
        f"{name} {inst.confidence:.1f}% at left {inst.box.left:.2f}, top {inst.box.top:.2f}, "
        f"width {inst.box.width:.2f}, height {inst.box.height:.2f}{_runner_ups(inst)}"
        for inst in label.instances
    ]


def _runner_ups(instance: Instance) -> str:
    others = ", ".join(f"{other.name} {other.confidence:.1f}%" for other in instance.runner_ups)
    return f"; also looked like {others}" if others else ""


def _report_failure(path: Path, reason: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"image": str(path), "error": reason}, ensure_ascii=False), flush=True)
    else:
        print(f"{path}: {reason}", file=sys.stderr, flush=True)


def _write_annotated(
    folder: Path, path: Path, snapshot: Snapshot, labels: tuple[Label, ...]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    boxed = [MatchedLabel(label, label.name) for label in labels if label.instances]
    picture = draw_boxes(snapshot.image, boxed)
    (folder / f"{path.stem}.jpg").write_bytes(encode_jpeg(picture))
