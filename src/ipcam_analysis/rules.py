"""Pure decisions: do these labels alert, under these settings, and why not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ipcam_analysis.models import Box, Decision, Label, MatchedLabel

if TYPE_CHECKING:
    from ipcam_analysis.config import FiltersConfig


def _folded(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def decide(labels: Sequence[Label], watched: Sequence[str], new_labels_only: bool) -> Decision:
    """Alarm mode: alert on watched labels. New-labels mode: alert on anything not watched.

    Names are compared case-insensitively, and a label matches through its parents, aliases and
    categories too: Rekognition calls "Human" an alias of "Person" and "Car" a child of "Vehicle".
    """
    watched_names = _folded(watched)
    matched: list[MatchedLabel] = []
    ignored: list[str] = []
    for label in labels:
        if new_labels_only:
            known = _known_because(label, watched_names)
            if known is None:
                shown = (
                    f"{label.name} ({', '.join(label.parents)})" if label.parents else label.name
                )
                matched.append(MatchedLabel(label, shown))
            else:
                ignored.append(f"{label.name}{known}")
        elif (
            _folded((label.name, *label.parents, *label.aliases, *label.categories)) & watched_names
        ):
            matched.append(MatchedLabel(label, label.name))
        else:
            ignored.append(label.name)
    return Decision(alert=bool(matched), matched=tuple(matched), ignored=tuple(ignored))


def _known_because(label: Label, watched_names: set[str]) -> str | None:
    """In new-labels mode, why a label is not new: '' when listed, ' (ignored parent: P)' when
    a parent is; None when it is new."""
    if _folded((label.name, *label.aliases)) & watched_names:
        return ""
    for parent in label.parents:
        if parent.casefold() in watched_names:
            return f" (ignored parent: {parent})"
    return None


def describe_labels(labels: Iterable[Label]) -> str:
    """`Person 98.7%, Tree 91.0%` for logs."""
    return ", ".join(f"{label.name} {label.confidence:.1f}%" for label in labels) or "none"


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two relative boxes (0: apart, 1: the same box)."""
    left = max(first.left, second.left)
    top = max(first.top, second.top)
    right = min(first.left + first.width, second.left + second.width)
    bottom = min(first.top + first.height, second.top + second.height)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
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


def filter_labels(
    labels: Sequence[Label], filters: FiltersConfig, min_confidence_percent: float | None = None
) -> tuple[tuple[Label, ...], tuple[str, ...]]:
    """Apply per-label confidence, minimum box area and ignore zones; return what is left and
    one reason per dropped label or object."""
    kept: list[Label] = []
    reasons: list[str] = []
    dropped_names: set[str] = set()
    thresholds = {name.casefold(): value for name, value in filters.label_confidence.items()}
    for label in labels:
        names = _folded((label.name, *label.parents, *label.aliases))
        needed = max(
            [min_confidence_percent or 0, *(thresholds[n] for n in names if n in thresholds)]
        )
        if label.confidence < needed:
            reasons.append(f"{label.name} {label.confidence:.0f}% below {needed:.0f}%")
            dropped_names.add(label.name.casefold())
            continue
        if not label.instances:
            kept.append(label)
            continue
        instances = []
        for instance in label.instances:
            box = instance.box
            if instance.confidence < needed:
                reasons.append(f"{label.name} {instance.confidence:.0f}% below {needed:.0f}%")
            elif box.width * box.height * 100 < filters.min_area_percent:
                reasons.append(
                    f"{label.name} smaller than {filters.min_area_percent:g}% of the picture"
                )
            elif any(
                in_zone(box, zone, filters.zone_min_overlap_percent) for zone in filters.zones
            ):
                reasons.append(f"{label.name} in an ignore zone")
            else:
                instances.append(instance)
        if instances:
            kept.append(replace(label, instances=tuple(instances)))
        else:
            dropped_names.add(label.name.casefold())
    return _without_orphaned_ancestors(kept, labels, dropped_names, reasons), tuple(reasons)


def _without_orphaned_ancestors(
    kept: list[Label], labels: Sequence[Label], dropped: set[str], reasons: list[str]
) -> tuple[Label, ...]:
    """Rekognition also reports each object's ancestors as labels without boxes ("Vehicle" for a
    Car). When every object behind such a label was filtered out, the ancestor goes too."""
    parents_of = {label.name.casefold(): _folded(label.parents) for label in labels}
    dropped_parents = set().union(*(parents_of.get(name, set()) for name in dropped))
    kept_parents = set().union(*(_folded(label.parents) for label in kept if label.instances))
    result = []
    for label in kept:
        name = label.name.casefold()
        if not label.instances and name in dropped_parents and name not in kept_parents:
            reasons.append(f"{label.name}: only seen in filtered objects")
            continue
        result.append(label)
    return tuple(result)
