"""One object, one box: the local model's sightings of every pass and tile, joined per object.

Each pass (416, 320, every tile) boxes an object on its own, and the model hesitates between
look-alikes: the quick-start photo's walker came out as a whole-body box and a torso box, the
horse as Horse with a Sheep box inside it. Within a family of look-alikes (people, vehicles,
animals) a box that overlaps a more confident one, or lies mostly inside it, is the same object.
The best sighting of each other class of the family (Truck beside Car) stays, on the kept
object's box, so that one-name-per-object (`rules.objects`) names the object once and keeps
the runner-up, which still matches `labels:` when it clears its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ipcam_analysis.rules.geometry import iou, overlap_area
from ipcam_analysis.rules.objects import SIBLING_GROUPS
from ipcam_analysis.values import Box, Instance

# The look-alikes: people, and the classes one-name-per-object merges (road vehicles, two
# wheels, animals). Other classes (a bicycle before a car, a boat) keep per-class suppression.
FAMILIES: tuple[frozenset[str], ...] = (frozenset({"person"}), *SIBLING_GROUPS)
# A box lying this much inside a more confident one of its family is a part of the same object
# (a torso in the body's box, a head in the dog's)...
PART_INSIDE = 0.8
# ...unless it is much smaller: then the evidence says two (a child before an adult, a car
# before a bus). The quick-start photo's parts are 0.21-0.32 of their object's area.
PART_MIN_AREA = 0.15
# A box holding the kept one and scoring nearly as well is the whole of which the kept box saw
# a part: the object takes the larger box.
WHOLE_MARGIN_PERCENT = 10


@dataclass
class _Object:
    name: str
    instance: Instance
    family: int
    siblings: dict[str, Instance] = field(default_factory=dict)


def one_box_per_object(
    sightings: list[tuple[str, Instance]], same_box_iou: float
) -> list[tuple[str, Instance]]:
    """The sightings (label name, instance) with each object of a family kept once, most
    confident first; sightings outside the families pass unchanged."""
    objects: list[_Object] = []
    others: list[tuple[str, Instance]] = []
    for name, instance in sorted(sightings, key=lambda sighting: -sighting[1].confidence):
        family = _family_of(name)
        if family is None:
            others.append((name, instance))
            continue
        same = next(
            (
                found
                for found in objects
                if found.family == family
                and _same_object(found.instance.box, instance.box, same_box_iou)
            ),
            None,
        )
        if same is None:
            objects.append(_Object(name, instance, family))
        elif name == same.name:
            if _is_whole_of(instance, same.instance):
                same.instance = replace(same.instance, box=instance.box)
        elif name not in same.siblings:
            same.siblings[name] = instance
    kept = [(found.name, found.instance) for found in objects]
    kept += [
        (name, replace(instance, box=found.instance.box))
        for found in objects
        for name, instance in found.siblings.items()
    ]
    return kept + others


def _same_object(first: Box, second: Box, same_box_iou: float) -> bool:
    if iou(first, second) >= same_box_iou:
        return True
    areas = sorted((first.width * first.height, second.width * second.height))
    if areas[0] <= 0:
        return False
    inside = overlap_area(first, second) / areas[0]
    return inside >= PART_INSIDE and areas[0] / areas[1] >= PART_MIN_AREA


def _is_whole_of(candidate: Instance, kept: Instance) -> bool:
    """Whether the candidate's box holds the kept one and scores nearly as well."""
    kept_area = kept.box.width * kept.box.height
    return (
        candidate.confidence >= kept.confidence - WHOLE_MARGIN_PERCENT
        and candidate.box.width * candidate.box.height > kept_area
        and overlap_area(candidate.box, kept.box) >= PART_INSIDE * kept_area
    )


def _family_of(name: str) -> int | None:
    folded = name.casefold()
    return next((index for index, family in enumerate(FAMILIES) if folded in family), None)
