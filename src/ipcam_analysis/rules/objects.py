"""One object, one name: boxes of sibling classes around the same object merge into one.

A detector that hesitates between look-alike classes reports one white van as Car 28 %,
Truck 44 % and Bus 31 %, with near-identical boxes. Counted as three objects it makes the
subject read "Car, Truck, Bus" for one van. The merged object keeps the most confident class's
name; the others stay on it as runner-ups (in the event's data), and a runner-up that cleared
its own confidence threshold still matches `labels:` (`runner_up_names`, read by decide()), so
a user watching Truck is alerted about a van the detector called Car 45 % / Truck 44 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ipcam_analysis.rules.filters import FiltersConfig, needed_confidence
from ipcam_analysis.rules.geometry import iou, overlap_area
from ipcam_analysis.values import Box, Detection, Instance, Label, RunnerUp

# Classes a detector confuses for one another. Only these merge: a person on a horse, or a car
# in front of a bus of a very different size, are two objects.
SIBLING_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"car", "truck", "bus", "van", "pickup truck", "suv", "train"}),
    frozenset({"bicycle", "motorcycle"}),
    # Birds too: YOLO-tiny calls a flamingo Sheep 45 % / Bird 36 %, an owl Bird / Dog.
    frozenset(
        {
            "dog",
            "cat",
            "horse",
            "sheep",
            "cow",
            "bear",
            "elephant",
            "zebra",
            "giraffe",
            "deer",
            "bird",
        }
    ),
)
SAME_OBJECT_IOU = 0.5
# Or: the smaller box lies mostly inside the larger one, and the two are of a similar size.
SAME_OBJECT_INSIDE = 0.8
SAME_OBJECT_MAX_AREA_RATIO = 2.0


@dataclass
class _Object:
    """A merged object: the most confident sighting, and the best one of each other class."""

    label: Label
    instance: Instance
    group: int
    runner_ups: dict[str, RunnerUp] = field(default_factory=dict)


def merge_same_objects(
    labels: Sequence[Label], needed_confidence: Callable[[Label], float]
) -> tuple[Label, ...]:
    """The labels with each object boxed under sibling classes kept once, under the most
    confident class. `needed_confidence(label)` is the threshold a runner-up must clear to
    still match `labels:` by its own name."""
    objects = _cluster(labels)
    if all(not found.runner_ups for found in objects):
        return tuple(labels)
    by_label: dict[int, list[_Object]] = {}
    for found in objects:
        by_label.setdefault(id(found.label), []).append(found)
    originals = {label.name: label for label in labels}
    merged = []
    for label in labels:
        if not label.instances or _group_of(label) is None:
            merged.append(label)
            continue
        kept = by_label.get(id(label), [])
        if kept:
            merged.append(_relabelled(label, kept, originals, needed_confidence))
    return tuple(merged)


def _cluster(labels: Sequence[Label]) -> list[_Object]:
    """Sightings of sibling classes, most confident first, each joining the first object of its
    group it overlaps enough, or starting a new one."""
    sightings = [
        (instance, label, group)
        for label in labels
        if (group := _group_of(label)) is not None
        for instance in label.instances
    ]
    sightings.sort(key=lambda sighting: -sighting[0].confidence)
    objects: list[_Object] = []
    for instance, label, group in sightings:
        same = next(
            (
                found
                for found in objects
                if found.group == group
                and found.label.name != label.name
                and same_object(found.instance.box, instance.box)
            ),
            None,
        )
        if same is None:
            objects.append(_Object(label, instance, group))
        elif label.name not in same.runner_ups:
            same.runner_ups[label.name] = RunnerUp(label.name, instance.confidence)
    return objects


def _relabelled(
    label: Label,
    objects: list[_Object],
    originals: dict[str, Label],
    needed_confidence: Callable[[Label], float],
) -> Label:
    instances = tuple(
        replace(found.instance, runner_ups=tuple(found.runner_ups.values())) for found in objects
    )
    names = {
        runner_up.name: None
        for found in objects
        for runner_up in found.runner_ups.values()
        if runner_up.confidence >= needed_confidence(originals[runner_up.name])
    }
    # A label that lost its best box to a more confident class is as sure as its best one left.
    confidence = label.confidence
    if len(instances) < len(label.instances):
        confidence = min(confidence, max(instance.confidence for instance in instances))
    return replace(
        label,
        confidence=confidence,
        instances=instances,
        runner_up_names=tuple(dict.fromkeys((*label.runner_up_names, *names))),
    )


def same_object(first: Box, second: Box) -> bool:
    """Whether two boxes frame the same thing: they overlap a lot, or one of similar size
    lies almost wholly inside the other (a bus box a little wider than the van's)."""
    areas = sorted((first.width * first.height, second.width * second.height))
    if areas[0] <= 0:
        return False
    if iou(first, second) >= SAME_OBJECT_IOU:
        return True
    inter = overlap_area(first, second)
    return inter / areas[0] >= SAME_OBJECT_INSIDE and areas[1] / areas[0] <= (
        SAME_OBJECT_MAX_AREA_RATIO
    )


def _group_of(label: Label) -> int | None:
    name = label.name.casefold()
    return next((index for index, group in enumerate(SIBLING_GROUPS) if name in group), None)


def one_name_per_object(
    detection: Detection, filters: FiltersConfig, min_confidence_percent: float | None
) -> Detection:
    """The detection with each object under one name, in what is decided, sent and recorded
    alike; a runner-up keeps matching `labels:` when it clears its own threshold."""

    def needed(label: Label) -> float:
        return needed_confidence(label, filters, min_confidence_percent)

    return replace(detection, labels=merge_same_objects(detection.labels, needed))
