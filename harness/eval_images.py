"""The project's evaluation photos (eval/images), as files and as decoded snapshots."""

from __future__ import annotations

import io
from pathlib import Path

from ipcam_analysis.imaging import decode_snapshot
from ipcam_analysis.values import Box, Snapshot

EVAL_IMAGES = Path(__file__).resolve().parents[1] / "eval" / "images"


def eval_snapshot(name: str, *, greyscale: bool = False) -> Snapshot:
    """One photo decoded as an upload; `greyscale` re-encodes it as a night (IR) camera would."""
    snapshot = decode_snapshot((EVAL_IMAGES / name).read_bytes())
    if not greyscale:
        return snapshot
    buffer = io.BytesIO()
    snapshot.image.convert("L").save(buffer, "JPEG", quality=90)
    return decode_snapshot(buffer.getvalue())


def overlap(box: Box, region: Box) -> float:
    """Intersection over union of two relative boxes."""
    width = min(box.left + box.width, region.left + region.width) - max(box.left, region.left)
    height = min(box.top + box.height, region.top + region.height) - max(box.top, region.top)
    inter = max(0.0, width) * max(0.0, height)
    union = box.width * box.height + region.width * region.height - inter
    return inter / union if union else 0.0


def centre_inside(box: Box, region: Box) -> bool:
    """Whether the box's centre lies in the region: enough for objects a few pixels wide."""
    x, y = box.left + box.width / 2, box.top + box.height / 2
    return (
        region.left <= x <= region.left + region.width
        and region.top <= y <= region.top + region.height
    )
