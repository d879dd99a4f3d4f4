"""Whether an alert only repeats what was said before: an object still where it was alerted, or a
label inside its cooldown. Pure: the store hands over what it remembers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from ipcam_analysis.rules.filters import StationaryConfig
from ipcam_analysis.rules.geometry import iou
from ipcam_analysis.values import Instance, Label, MatchedLabel, RememberedObject


def object_kind(label: Label) -> str:
    """What an object is remembered as: its nearest parent, so a parked van that a detector
    calls a Truck in one frame and a Bus in the next is the same Vehicle."""
    return label.parents[0] if label.parents else label.name


def drop_stationary(
    matched: Sequence[MatchedLabel],
    remembered: Sequence[RememberedObject],
    settings: StationaryConfig,
) -> tuple[tuple[MatchedLabel, ...], list[str], set[int]]:
    """Drop the instances that overlap a remembered box; return what is left, why, and the ids
    of the remembered objects seen again (to refresh)."""
    kept: list[MatchedLabel] = []
    reasons: list[str] = []
    seen_again: set[int] = set()
    still_there: set[str] = set()
    for match in matched:
        if not match.label.instances:
            kept.append(match)
            continue
        new: list[Instance] = []
        for instance in match.label.instances:
            known = _best_overlap(remembered, object_kind(match.label), instance, settings.iou)
            if known is None:
                new.append(instance)
                continue
            seen_again.add(known.id)
            since = datetime.fromtimestamp(known.alerted_at).strftime("%H:%M")
            reasons.append(f"{match.label.name} still there (alerted at {since})")
        if new:
            kept.append(replace(match, label=replace(match.label, instances=tuple(new))))
        else:
            still_there.update(p.casefold() for p in (match.label.name, *match.label.parents))
    return _without_repeated_ancestors(kept, still_there), reasons, seen_again


def _without_repeated_ancestors(
    kept: list[MatchedLabel], still_there: set[str]
) -> tuple[MatchedLabel, ...]:
    """ "Vehicle" without a box only repeats what a stationary Car already said."""
    boxed_kept = {
        p.casefold() for m in kept if m.label.instances for p in (m.label.name, *m.label.parents)
    }
    return tuple(
        m
        for m in kept
        if m.label.instances
        or m.label.name.casefold() not in still_there
        or m.label.name.casefold() in boxed_kept
    )


def _best_overlap(
    remembered: Sequence[RememberedObject], kind: str, instance: Instance, threshold: float
) -> RememberedObject | None:
    """The remembered box of this kind that overlaps the instance most, if enough."""
    best, best_iou = None, threshold
    for known in remembered:
        if known.kind.casefold() != kind.casefold():
            continue
        overlap = iou(known.box, instance.box)
        if overlap >= best_iou:
            best, best_iou = known, overlap
    return best


def drop_cooling_down(
    matched: Sequence[MatchedLabel], last_alerts: Mapping[str, float], seconds: float, now: float
) -> tuple[tuple[MatchedLabel, ...], list[str]]:
    """Drop the labels that alerted less than `seconds` ago (`last_alerts` by case-folded name)."""
    kept, reasons = [], []
    for match in matched:
        previous = last_alerts.get(match.label.name.casefold())
        if previous is not None and now - previous < seconds:
            reasons.append(f"{match.label.name} alerted {now - previous:.0f} s ago (cooldown)")
        else:
            kept.append(match)
    return tuple(kept), reasons
