"""One object, one name: sibling classes boxing the same object merge, on real detections."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ipcam_analysis.rules import (
    FiltersConfig,
    decide,
    filter_labels,
    matching_sensors,
    merge_same_objects,
    needed_confidence,
)
from ipcam_analysis.rules.objects import SIBLING_GROUPS, same_object
from ipcam_analysis.values import (
    Box,
    Decision,
    Detection,
    Instance,
    Label,
    RunnerUp,
    detection_from_dict,
    detection_to_dict,
    label_from_dict,
    label_to_dict,
)

DETECTIONS = Path(__file__).parent / "data" / "local_detections.json"


def detection(image: str) -> Detection:
    """What the local detector answered for a picture of tests/data (see its README)."""
    return detection_from_dict(json.loads(DETECTIONS.read_text())[image])


def anything(label: Label) -> float:
    return 0.0


def names(decision: Decision) -> list[str]:
    return [match.display_name for match in decision.matched]


def counts(labels: tuple[Label, ...]) -> dict[str, int]:
    return {label.name: len(label.instances) for label in labels}


def test_the_van_of_the_street_scene_is_one_truck() -> None:
    # vtest frame 150: the white van came back as Car 28 %, Truck 44 % and Bus 31 %.
    before = detection("opencv_vtest_f0150.jpg").labels
    assert counts(before) == {"Person": 5, "Car": 2, "Truck": 1, "Bus": 1}

    merged = merge_same_objects(before, anything)

    assert counts(merged) == {"Person": 5, "Car": 1, "Truck": 1}
    truck = next(label for label in merged if label.name == "Truck")
    (van,) = truck.instances
    assert van.confidence == pytest.approx(44.2, abs=0.1)
    assert [(other.name, round(other.confidence)) for other in van.runner_ups] == [
        ("Bus", 31),
        ("Car", 28),
    ]
    car = next(label for label in merged if label.name == "Car")
    assert car.confidence == pytest.approx(80.2, abs=0.1)  # the other car, far right
    assert names(decide(merged, ["Person", "Vehicle"], False)) == ["Person", "Car", "Truck"]


@pytest.mark.parametrize(
    "image", ["opencv_vtest_f0150.jpg", "opencv_vtest_f0300.jpg", "darknet_horses.jpg"]
)
def test_no_two_kept_boxes_of_siblings_frame_the_same_object(image: str) -> None:
    merged = merge_same_objects(detection(image).labels, anything)
    boxes = [
        (label.name, instance.box)
        for label in merged
        if any(label.name.casefold() in group for group in SIBLING_GROUPS)
        for instance in label.instances
    ]
    for index, (name, box) in enumerate(boxes):
        for other_name, other in boxes[index + 1 :]:
            assert name == other_name or not same_object(box, other)


def test_different_objects_and_other_classes_stay_apart() -> None:
    near = Box(0.10, 0.10, 0.20, 0.20)
    person = Label("Person", 90, instances=(Instance(near, 90),))
    horse = Label("Horse", 80, instances=(Instance(near, 80),))  # a rider: two objects
    car = Label("Car", 70, instances=(Instance(Box(0.5, 0.5, 0.1, 0.1), 70),))
    # A small car in front of a bus: inside it, but far smaller.
    bus = Label("Bus", 60, instances=(Instance(Box(0.45, 0.45, 0.4, 0.3), 60),))
    labels = (person, horse, car, bus)
    assert merge_same_objects(labels, anything) == labels


def test_a_watched_runner_up_still_alerts_when_it_cleared_its_threshold() -> None:
    box = Box(0.4, 0.4, 0.2, 0.2)
    car = Label("Car", 45, ("Vehicle",), instances=(Instance(box, 45),))
    truck = Label("Truck", 44, ("Vehicle",), instances=(Instance(box, 44),))
    filters = FiltersConfig(label_confidence={"Truck": 50})

    def threshold(minimum: float) -> Callable[[Label], float]:
        return lambda label: needed_confidence(label, FiltersConfig(), minimum)

    merged = merge_same_objects((car, truck), threshold(40))
    assert [label.name for label in merged] == ["Car"]
    assert merged[0].runner_up_names == ("Truck",)
    decision = decide(merged, ["Truck"], new_labels_only=False)
    assert decision.alert and names(decision) == ["Car"]  # shown under the winning name
    assert matching_sensors(decision.matched, ["Truck", "Bus"]) == ("Truck",)

    # Below the camera's minimum, or the label's own `label_confidence`: no longer a Truck.
    for needed in (threshold(44.5), lambda label: needed_confidence(label, filters, 40)):
        merged = merge_same_objects((car, truck), needed)
        assert merged[0].runner_up_names == ()
        assert merged[0].instances[0].runner_ups == (RunnerUp("Truck", 44),)
        assert not decide(merged, ["Truck"], new_labels_only=False).alert

    # The runner-up does not make the winner need the runner-up's own threshold.
    kept, _ = filter_labels(merge_same_objects((car, truck), threshold(40)), filters, 40)
    assert [label.name for label in kept] == ["Car"]


def test_runner_ups_survive_the_round_trip_through_json() -> None:
    merged = merge_same_objects(detection("opencv_vtest_f0150.jpg").labels, anything)
    again = tuple(label_from_dict(json.loads(json.dumps(label_to_dict(x)))) for x in merged)
    assert again == merged
    old = detection_to_dict(detection("opencv_vtest_f0000.jpg"))  # events stored before merging
    assert detection_from_dict(json.loads(json.dumps(old))) == detection("opencv_vtest_f0000.jpg")
