"""What the user taught: a box marked "not a Person" on the dashboard drops the detections that
match it from then on, and the marks suggest per-label thresholds.

A detection matches a learned exception when it is of the same label, its box overlaps the
marked one enough, and the picture inside the marked box still looks as it did (the perceptual
hash of that region is close): the garden gnome stops alerting, a person standing where the gnome
is does not (the region looks different). The region is hashed where the mark was, not where the
detector put its box this time, so that a box a few pixels off does not change the fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import Field

from ipcam_analysis.rules.geometry import iou
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Box, Label, LearnedException

# A suggestion needs this many marks of a label, and covers about this share of them.
MIN_MARKS_FOR_SUGGESTION = 3
SUGGESTION_SHARE = 0.75
SUGGESTION_STEP = 5  # thresholds are suggested in steps of this many percent


class ExceptionsConfig(StrictModel):
    """How close a detection must be to a learned exception ("not a Person" on the dashboard)."""

    min_iou: float = Field(0.5, gt=0, le=1)  # overlap of the boxes
    # Bits of the region's 256-bit perceptual hash that may differ: re-encoding changes about
    # 10, the light of another hour 15 to 45, a person standing in the region about 100.
    max_difference_bits: int = Field(40, ge=0, le=256)


@dataclass(frozen=True)
class ThresholdSuggestion:
    """`count` of the `marks` false `label` were under `threshold` percent."""

    label: str
    threshold: int
    count: int
    marks: int

    def __str__(self) -> str:
        return f"{self.count} of {self.marks} false {self.label} were under {self.threshold} %"


def drop_learned_exceptions(
    labels: Sequence[Label],
    exceptions: Sequence[LearnedException],
    fingerprint_at: Callable[[Box], int],
    settings: ExceptionsConfig,
) -> tuple[tuple[Label, ...], tuple[str, ...], frozenset[int]]:
    """The labels without the objects that match a learned exception; one reason per dropped
    object; the ids of the exceptions that matched. `fingerprint_at(box)` is the perceptual
    hash of the picture's region in `box` (a marked box's, never the detection's)."""
    if not exceptions:
        return tuple(labels), (), frozenset()
    fingerprints: dict[int, int] = {}

    def looks_the_same(exception: LearnedException) -> bool:
        if exception.id not in fingerprints:
            fingerprints[exception.id] = fingerprint_at(exception.box)
        difference = (fingerprints[exception.id] ^ exception.fingerprint).bit_count()
        return difference <= settings.max_difference_bits

    kept: list[Label] = []
    reasons: list[str] = []
    matched: set[int] = set()
    for label in labels:
        candidates = [e for e in exceptions if e.label.casefold() == label.name.casefold()]
        if not candidates or not label.instances:
            kept.append(label)
            continue
        instances = []
        for instance in label.instances:
            match = next(
                (
                    e
                    for e in candidates
                    if iou(e.box, instance.box) >= settings.min_iou and looks_the_same(e)
                ),
                None,
            )
            if match is None:
                instances.append(instance)
                continue
            matched.add(match.id)
            reasons.append(f"{label.name} {describe_exception(match)}")
        if instances:
            kept.append(replace(label, instances=tuple(instances)))
    return tuple(kept), tuple(reasons), frozenset(matched)


def describe_exception(exception: LearnedException) -> str:
    """`matches a learned exception (marked not a Person on 2026-12-07)`"""
    day = datetime.fromtimestamp(exception.marked_at).strftime("%Y-%m-%d")
    return f"matches a learned exception (marked {not_a(exception.label)} on {day})"


def not_a(label: str) -> str:
    """`not a Person`, `not an Eagle`: what the dashboard's button says."""
    article = "an" if label[:1].casefold() in "aeiou" else "a"
    return f"not {article} {label}"


def suggest_thresholds(marks: Sequence[tuple[str, float]]) -> list[ThresholdSuggestion]:
    """From the confidences of the boxes marked "not a <label>": per label with enough marks,
    the threshold (a multiple of SUGGESTION_STEP) under which most of them were."""
    by_label: dict[str, list[float]] = {}
    names: dict[str, str] = {}
    for name, confidence in marks:
        by_label.setdefault(name.casefold(), []).append(confidence)
        names.setdefault(name.casefold(), name)
    suggestions = []
    for key, confidences in sorted(by_label.items()):
        if len(confidences) < MIN_MARKS_FOR_SUGGESTION:
            continue
        confidences.sort()
        covered = confidences[math.ceil(len(confidences) * SUGGESTION_SHARE) - 1]
        threshold = (math.floor(covered / SUGGESTION_STEP) + 1) * SUGGESTION_STEP
        if threshold >= 100:
            continue
        under = sum(1 for confidence in confidences if confidence < threshold)
        suggestions.append(ThresholdSuggestion(names[key], threshold, under, len(confidences)))
    return suggestions
