"""Boxes and zones in relative coordinates: overlap and inside-ness."""

from __future__ import annotations

from collections.abc import Sequence

from ipcam_analysis.values import Box


def overlap_area(first: Box, second: Box) -> float:
    """The area two relative boxes share (0 when apart)."""
    left = max(first.left, second.left)
    top = max(first.top, second.top)
    right = min(first.left + first.width, second.left + second.width)
    bottom = min(first.top + first.height, second.top + second.height)
    return max(0.0, right - left) * max(0.0, bottom - top)


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two relative boxes (0: apart, 1: the same box)."""
    inter = overlap_area(first, second)
    union = first.width * first.height + second.width * second.height - inter
    return inter / union if union > 0 else 0.0


def point_in_polygon(x: float, y: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: an odd number of edge crossings to the right means inside."""
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


ZONE_SAMPLES = 10  # grid points per side used to measure how much of a box lies in a zone


def in_zone(
    box: Box, zone: Sequence[tuple[float, float]], min_overlap_percent: float | None
) -> bool:
    """Whether an object is in an ignore zone: its box centre, or a share of its box, inside."""
    if min_overlap_percent is None:
        return point_in_polygon(box.left + box.width / 2, box.top + box.height / 2, zone)
    step_x, step_y = box.width / ZONE_SAMPLES, box.height / ZONE_SAMPLES
    inside = sum(
        point_in_polygon(box.left + (i + 0.5) * step_x, box.top + (j + 0.5) * step_y, zone)
        for i in range(ZONE_SAMPLES)
        for j in range(ZONE_SAMPLES)
    )
    return inside * 100 / ZONE_SAMPLES**2 >= min_overlap_percent
