"""One object, one box: the local model's passes joined per object, on every path."""

from __future__ import annotations

import pytest

from harness.eval_images import eval_snapshot
from harness.service import DATA, upload
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.detect.one_box import one_box_per_object
from ipcam_analysis.rules import one_name_per_object
from ipcam_analysis.rules.filters import FiltersConfig
from ipcam_analysis.store import EventFilter
from ipcam_analysis.values import Box, Detection, Instance, Label, label_from_dict

# The README's quick-start photo: a walker, his dog and a white horse in a field.
QUICK_START = "darknet_person.jpg"
WALKER = Box(0.29, 0.22, 0.15, 0.68)  # head to boots, read off the photo by eye


@pytest.fixture(scope="module")
def detector() -> LocalDetector:
    """The local detector with its defaults, as the service builds it."""
    return LocalDetector(LocalDetectorConfig(), LocalDetectorConfig().min_confidence_percent)


def boxes_per_name(labels: tuple[Label, ...]) -> dict[str, int]:
    return {label.name: len(label.instances) for label in labels}


def test_the_quick_start_photo_has_one_box_per_object(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot(QUICK_START))
    recorded = one_name_per_object(detection, FiltersConfig(), None)
    assert boxes_per_name(recorded.labels) == {"Person": 1, "Dog": 1, "Horse": 1}
    # The walker's box is the whole of him, not the torso the 320 pass also saw.
    (walker,) = next(label for label in recorded.labels if label.name == "Person").instances
    box = walker.box
    assert box.top < WALKER.top + 0.05 and box.top + box.height > 0.85
    # The horse's Sheep is kept as what the horse also looked like, not as a second animal.
    (horse,) = next(label for label in recorded.labels if label.name == "Horse").instances
    assert [runner_up.name for runner_up in horse.runner_ups] == ["Sheep"]


def test_the_running_service_records_one_box_per_object(run_service) -> None:
    service = run_service(detector={"type": "local"}, workers=1, email={"transport": "none"})
    upload(service.address, "cam01", (DATA / QUICK_START).read_bytes(), "field.jpg")
    service.wait_idle(timeout=120)
    (event,) = service.service.store.events(EventFilter(camera="cam01"))
    labels = tuple(
        label_from_dict(data) for data in service.service.store.event(event["id"])["labels"]
    )
    assert boxes_per_name(labels) == {"Person": 1, "Dog": 1, "Horse": 1}


def sighting(
    name: str, confidence: float, box: tuple[float, float, float, float]
) -> tuple[str, Instance]:
    return name, Instance(Box(*box), confidence)


def test_a_part_inside_its_object_is_the_same_object() -> None:
    whole = sighting("Person", 93.7, (0.30, 0.24, 0.14, 0.65))
    torso = sighting("Person", 94.4, (0.33, 0.36, 0.06, 0.40))
    # The torso scored higher, yet the object keeps the whole body's box.
    assert one_box_per_object([torso, whole], 0.45) == [("Person", Instance(whole[1].box, 94.4))]


def test_a_much_smaller_object_inside_a_larger_one_is_another_object() -> None:
    bus = sighting("Bus", 90, (0.1, 0.1, 0.6, 0.5))
    car = sighting("Car", 80, (0.3, 0.35, 0.15, 0.15))  # 7.5 % of the bus's area
    assert one_box_per_object([bus, car], 0.45) == [bus, car]


def test_a_sibling_class_stays_on_the_objects_box_for_one_name_per_object() -> None:
    horse = sighting("Horse", 92.3, (0.62, 0.32, 0.33, 0.46))
    sheep = sighting("Sheep", 72.7, (0.71, 0.39, 0.15, 0.32))
    kept = one_box_per_object([sheep, horse], 0.45)
    assert kept == [horse, ("Sheep", Instance(horse[1].box, 72.7))]
    labels = tuple(Label(name, i.confidence, instances=(i,)) for name, i in kept)
    merged = one_name_per_object(Detection("local", labels, 1.0), FiltersConfig(), None)
    assert boxes_per_name(merged.labels) == {"Horse": 1}


def test_other_families_and_other_classes_are_left_alone() -> None:
    rider = sighting("Person", 90, (0.4, 0.1, 0.2, 0.5))
    horse = sighting("Horse", 85, (0.3, 0.3, 0.4, 0.5))
    bird = sighting("Bird", 60, (0.42, 0.12, 0.1, 0.1))  # inside the rider's box
    bench = sighting("Bench", 50, (0.3, 0.3, 0.4, 0.5))
    kept = one_box_per_object([bench, bird, horse, rider], 0.45)
    assert sorted(kept) == sorted([rider, horse, bird, bench])
