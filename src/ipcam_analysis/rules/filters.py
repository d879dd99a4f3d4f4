"""The filters' settings and the pure filter that drops labels and objects not worth an alert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated

from pydantic import AfterValidator, Field

from ipcam_analysis.rules.bursts import ConfirmConfig
from ipcam_analysis.rules.exceptions import ExceptionsConfig
from ipcam_analysis.rules.geometry import in_zone
from ipcam_analysis.rules.labels import folded
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Label


class StationaryConfig(StrictModel):
    """Remember alerted boxes; an object that stays where it was does not alert again."""

    enabled: bool = False
    iou: float = Field(0.6, gt=0, le=1)  # overlap with a remembered box that means "still there"
    forget_after_minutes: float = Field(30, gt=0)  # unseen this long: it has left


def _polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) < 3:
        raise ValueError("a zone needs at least 3 [x, y] points")
    if not all(0 <= x <= 1 and 0 <= y <= 1 for x, y in points):
        raise ValueError("zone points are [x, y] fractions of the picture, between 0 and 1")
    return points


Zone = Annotated[list[tuple[float, float]], AfterValidator(_polygon)]


class FiltersConfig(StrictModel):
    """Drop what is not worth an alert; each filter is off by default (a config of the original
    format behaves exactly as before)."""

    min_area_percent: float = Field(0, ge=0, le=100)
    label_confidence: dict[str, float] = Field(default_factory=dict)
    zones: list[Zone] = Field(default_factory=list)  # ignore zones, relative coordinates
    # None: an object is in a zone when its box centre is; a number: when this share of its box is.
    zone_min_overlap_percent: float | None = Field(None, gt=0, le=100)
    # Bits of the 256-bit perceptual hash that may differ for a frame to count as a repeat.
    duplicate_hash_distance: int = Field(0, ge=0, le=256)
    stationary: StationaryConfig = Field(default_factory=StationaryConfig)
    cooldown_seconds: float = Field(0, ge=0)
    # How closely a detection must match a box marked "not a <label>" on the dashboard.
    exceptions: ExceptionsConfig = Field(default_factory=ExceptionsConfig)
    # A weak detection alerts only when another picture of the same burst saw its label.
    confirm: ConfirmConfig = Field(default_factory=ConfirmConfig)

    @property
    def remembers_alerts(self) -> bool:
        """Whether an alert is remembered for the ones after it (stationary objects, cooldowns)."""
        return self.stationary.enabled or bool(self.cooldown_seconds)

    def merged(self, override: FiltersConfig | None) -> FiltersConfig:
        """This (global) config with the keys a camera set replaced."""
        if override is None:
            return self
        return self.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


def filter_labels(
    labels: Sequence[Label], filters: FiltersConfig, min_confidence_percent: float | None = None
) -> tuple[tuple[Label, ...], tuple[str, ...]]:
    """Apply per-label confidence, minimum box area and ignore zones; return what is left and
    one reason per dropped label or object."""
    kept: list[Label] = []
    reasons: list[str] = []
    dropped_names: set[str] = set()
    for label in labels:
        needed = needed_confidence(label, filters, min_confidence_percent)
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


def needed_confidence(
    label: Label, filters: FiltersConfig, min_confidence_percent: float | None
) -> float:
    """The confidence a label needs: the camera's minimum, or higher for a label (or a parent
    or alias of it) with its own `label_confidence`."""
    thresholds = {name.casefold(): value for name, value in filters.label_confidence.items()}
    names = folded((label.name, *label.parents, *label.aliases))
    return max([min_confidence_percent or 0, *(thresholds[n] for n in names if n in thresholds)])


def _without_orphaned_ancestors(
    kept: list[Label], labels: Sequence[Label], dropped: set[str], reasons: list[str]
) -> tuple[Label, ...]:
    """Rekognition also reports each object's ancestors as labels without boxes ("Vehicle" for a
    Car). When every object behind such a label was filtered out, the ancestor goes too."""
    parents_of = {label.name.casefold(): folded(label.parents) for label in labels}
    dropped_parents = set().union(*(parents_of.get(name, set()) for name in dropped))
    kept_parents = set().union(*(folded(label.parents) for label in kept if label.instances))
    result = []
    for label in kept:
        name = label.name.casefold()
        if not label.instances and name in dropped_parents and name not in kept_parents:
            reasons.append(f"{label.name}: only seen in filtered objects")
            continue
        result.append(label)
    return tuple(result)
