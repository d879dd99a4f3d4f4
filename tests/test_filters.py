"""The pure filters: per-label confidence, box area, ignore zones, overlap."""

import pytest

from ipcam_analysis.rules import FiltersConfig, filter_labels, in_zone, iou
from ipcam_analysis.values import Box, Instance, Label

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


def boxed(name: str, confidence: float, box: Box, parents: tuple[str, ...] = ()) -> Label:
    return Label(name, confidence, parents=parents, instances=(Instance(box, confidence),))


def test_iou() -> None:
    box = Box(0.1, 0.1, 0.2, 0.2)
    assert iou(box, box) == pytest.approx(1)
    assert iou(box, Box(0.5, 0.5, 0.1, 0.1)) == 0
    assert 0.3 < iou(box, Box(0.15, 0.1, 0.2, 0.2)) < 0.7


def test_zone_by_centre_or_by_share() -> None:
    straddling = Box(0.3, 0.4, 0.3, 0.2)  # 2/3 inside the left half, centre at x=0.45
    assert in_zone(straddling, LEFT_HALF, None)
    assert in_zone(straddling, LEFT_HALF, 60)
    assert not in_zone(straddling, LEFT_HALF, 80)
    assert not in_zone(Box(0.6, 0.1, 0.1, 0.1), LEFT_HALF, None)


def test_per_label_confidence_applies_through_parents() -> None:
    car = boxed("Car", 85, Box(0.6, 0.6, 0.2, 0.2), parents=("Vehicle", "Transportation"))
    person = boxed("Person", 85, Box(0.6, 0.1, 0.1, 0.3))
    kept, reasons = filter_labels([car, person], FiltersConfig(label_confidence={"vehicle": 90}))
    assert [label.name for label in kept] == ["Person"]
    assert reasons == ("Car 85% below 90%",)


def test_small_boxes_and_zones_drop_objects_and_their_bare_ancestors() -> None:
    tiny = boxed("Car", 95, Box(0.7, 0.7, 0.02, 0.02), parents=("Vehicle",))
    in_left = boxed("Person", 95, Box(0.1, 0.2, 0.1, 0.3))
    vehicle = Label("Vehicle", 95)  # Rekognition's box-less ancestor of the Car
    outdoors = Label("Outdoors", 90)
    filters = FiltersConfig(min_area_percent=1, zones=[LEFT_HALF])
    kept, reasons = filter_labels([tiny, in_left, vehicle, outdoors], filters)
    assert [label.name for label in kept] == ["Outdoors"]
    assert "Car smaller than 1% of the picture" in reasons
    assert "Person in an ignore zone" in reasons
    assert "Vehicle: only seen in filtered objects" in reasons


def test_camera_minimum_confidence() -> None:
    person = boxed("Person", 70, Box(0.6, 0.1, 0.1, 0.3))
    kept, _ = filter_labels([person], FiltersConfig(), min_confidence_percent=80)
    assert kept == ()
