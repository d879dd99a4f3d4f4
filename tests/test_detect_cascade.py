"""The cascade: only images the local detector cannot rule out reach Rekognition (moto)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageOps
from pydantic import ValidationError

from harness.aws import REGION, Moto, label
from harness.eval_images import eval_snapshot
from harness.service import upload
from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import DetectorError, build_detector
from ipcam_analysis.detect.cascade import (
    DEFAULT_CANDIDATE_PERCENT,
    CascadeDetector,
    CascadeDetectorConfig,
    CloudGate,
)
from ipcam_analysis.detect.local import LocalDetector
from ipcam_analysis.detect.rekognition import RekognitionConfig, RekognitionDetector
from ipcam_analysis.detect.thresholds import LabelThresholds
from ipcam_analysis.values import Box, Instance, Label, WatchedLabels

PERSON = label("Person", 98.5, aliases=("Human",), boxes=((0.05, 0.1, 0.5, 0.9),))
DOG = label(
    "Dog", 96.0, parents=("Animal", "Pet", "Canine", "Mammal"), boxes=((0.2, 0.3, 0.3, 0.6),)
)


@pytest.fixture(scope="module")
def screening() -> Iterator[LocalDetector]:
    """One local stage at the cascade's candidate threshold, shared: loading it takes a while."""
    detector = LocalDetector(CascadeDetectorConfig(), 15)
    yield detector
    detector.close()


def cascade(screening: LocalDetector) -> Any:
    gate = CloudGate(screening.vocabulary)
    return CascadeDetector(screening, gate, RekognitionDetector(RekognitionConfig(), REGION))


def watching(*labels: str, new_labels_only: bool = False) -> WatchedLabels:
    """What a camera with these `labels` tells its detector with each picture."""
    return WatchedLabels(labels, new_labels_only)


def test_nothing_local_means_no_cloud_call(aws: Moto, screening: LocalDetector) -> None:
    aws.rekognition.labels = [PERSON]
    detection = cascade(screening).detect(
        eval_snapshot("opencv_tree_f0000.jpg"), watching("Person", "Vehicle")
    )
    assert detection.detector == "cascade"
    assert detection.cloud_calls == 0
    assert aws.rekognition.calls == 0


def test_a_candidate_is_confirmed_and_rekognition_answers(
    aws: Moto, screening: LocalDetector
) -> None:
    aws.rekognition.labels = [PERSON]
    detection = cascade(screening).detect(eval_snapshot("skimage_camera.jpg"), watching("Person"))
    assert aws.rekognition.calls == 1
    assert detection.cloud_calls == 1
    assert detection.detector == "cascade"
    assert [(lb.name, lb.confidence) for lb in detection.labels] == [("Person", 98.5)]
    assert detection.elapsed_ms > 0


def test_rekognition_may_overrule_the_local_candidate(aws: Moto, screening: LocalDetector) -> None:
    aws.rekognition.labels = []  # Rekognition sees nobody: nothing to alert on
    detection = cascade(screening).detect(eval_snapshot("skimage_camera.jpg"), watching("person"))
    assert (detection.labels, detection.cloud_calls) == ((), 1)


def test_only_watched_labels_are_candidates(aws: Moto, screening: LocalDetector) -> None:
    detector, vehicles = cascade(screening), watching("Vehicle")
    person_only = detector.detect(eval_snapshot("opencv_basketball1.jpg"), vehicles)
    assert aws.rekognition.calls == 0
    assert {lb.name for lb in person_only.labels} == {"Person"}  # kept, but cannot alert
    aws.rekognition.labels = [label("Car", 97.0, parents=("Vehicle", "Transportation"))]
    assert detector.detect(eval_snapshot("darknet_dog.jpg"), vehicles).cloud_calls == 1
    assert aws.rekognition.calls == 1


def test_new_labels_mode_asks_for_what_is_not_listed(aws: Moto, screening: LocalDetector) -> None:
    detector, usual = cascade(screening), watching("Person", "Human", new_labels_only=True)
    assert detector.detect(eval_snapshot("opencv_basketball1.jpg"), usual).cloud_calls == 0
    aws.rekognition.labels = [DOG]
    assert detector.detect(eval_snapshot("darknet_dog.jpg"), usual).cloud_calls == 1
    assert aws.rekognition.calls == 1


def test_labels_unknown_locally_always_go_to_the_cloud(aws: Moto, screening: LocalDetector) -> None:
    tree = eval_snapshot("opencv_tree_f0000.jpg")
    assert cascade(screening).detect(tree, watching("Person", "Package")).cloud_calls == 1
    assert aws.rekognition.calls == 1


def test_rekognition_errors_reach_the_caller(
    aws: Moto, screening: LocalDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DetectorError) as error:
        cascade(screening).detect(eval_snapshot("skimage_camera.jpg"), watching("Person"))
    assert error.value.transient


def test_built_from_the_config(aws: Moto) -> None:
    config = AppConfig.model_validate(
        {"detector": {"type": "cascade", "threads": 1}, "aws_region": REGION, "labels": ["Person"]}
    )
    detector = build_detector(config.detector_settings(), config.detector_context)
    assert isinstance(detector, CascadeDetector)
    aws.rekognition.labels = [PERSON]
    people = config.camera("cam01").watched
    assert detector.detect(eval_snapshot("opencv_tree_f0000.jpg"), people).cloud_calls == 0
    assert detector.detect(eval_snapshot("skimage_camera.jpg"), people).cloud_calls == 1
    detector.close()


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


BIRD = label("Bird", 93.0, parents=("Animal",), boxes=((0.4, 0.5, 0.2, 0.3),))


def cascade_from_config(candidates: object) -> CascadeDetector:
    config = AppConfig.model_validate(
        {
            "detector": {"type": "cascade", "candidate_confidence_percent": candidates},
            "aws_region": REGION,
        }
    )
    detector = build_detector(config.detector_settings(), config.detector_context)
    assert isinstance(detector, CascadeDetector)
    return detector


def test_a_weak_animal_candidate_is_asked_about_only_under_the_animal_threshold(
    aws: Moto,
) -> None:
    # The local detector sees the pelican only weakly (about 8 %): below the usual 15 %.
    pelican = eval_snapshot("cutout_pelican.jpg")
    aws.rekognition.labels = [BIRD]
    animals = watching("Animal")
    assert cascade_from_config(15).detect(pelican, animals).cloud_calls == 0
    assert aws.rekognition.calls == 0

    by_label = cascade_from_config({"Animal": 6, "default": 15})
    detection = by_label.detect(pelican, animals)
    assert (detection.cloud_calls, aws.rekognition.calls) == (1, 1)
    assert [(lb.name, lb.confidence) for lb in detection.labels] == [("Bird", 93.0)]

    # The same map on a person/vehicle camera costs nothing more: the bird is not watched.
    assert by_label.detect(pelican, watching("Person", "Vehicle")).cloud_calls == 0
    assert aws.rekognition.calls == 1


def test_each_label_is_held_to_its_own_candidate_threshold() -> None:
    thresholds = LabelThresholds.parse({"Animal": 8, "person": 15, "default": 20}, 15)
    assert thresholds.lowest == 8
    dog = Label("Dog", 12.0, ("Animal", "Pet"), (), (), (Instance(Box(0, 0, 1, 1), 12.0),))
    human = Label("Human", 12.0)
    person = Label(
        "Person",
        16.0,
        (),
        ("Human",),
        (),
        (Instance(Box(0, 0, 0.1, 0.1), 16.0), Instance(Box(0.5, 0.5, 0.1, 0.1), 10.0)),
    )
    car = Label("Car", 18.0, ("Vehicle", "Transportation"))
    assert [thresholds.for_label(lb) for lb in (dog, human, person, car)] == [8, 20, 15, 20]
    kept = thresholds.passing([dog, human, person, car])
    assert [(lb.name, len(lb.instances)) for lb in kept] == [("Dog", 1), ("Person", 1)]
    assert LabelThresholds.parse(12, 15) == LabelThresholds(12.0)
    assert LabelThresholds.parse({"Animal": 8}, 15) == LabelThresholds(15.0, {"animal": 8.0})


def test_candidate_thresholds_in_the_config_are_checked() -> None:
    for wrong in ({"Animal": 0}, {"Animal": 120}, {" ": 8}, "cheap"):
        with pytest.raises(ValidationError):
            CascadeDetectorConfig(candidate_confidence_percent=wrong)  # type: ignore[arg-type]
    settings = CascadeDetectorConfig(candidate_confidence_percent={"Animal": 8})
    thresholds = LabelThresholds.parse(
        settings.candidate_confidence_percent, DEFAULT_CANDIDATE_PERCENT
    )
    assert thresholds.lowest == 8


CAT = label("Cat", 91.0, parents=("Animal", "Pet", "Mammal"), boxes=((0.2, 0.1, 0.6, 0.8),))


def test_each_camera_is_screened_for_its_own_labels(run_service, aws: Moto) -> None:
    # cam01 watches cats, the other cameras people: the local stage sees the cat well, so it is
    # cam01's candidate only, and Rekognition decides (a strong local cat is not the answer).
    cat = eval_snapshot("skimage_chelsea.jpg")
    aws.rekognition.labels = []
    service = run_service(
        detector={"type": "cascade", "threads": 1},
        labels=["Person"],
        cameras={"cam01": {"labels": ["Cat"]}},
    )
    upload(service.address, "cam02", cat.data, "cam02.jpg")
    service.wait_idle()
    assert aws.rekognition.calls == 0
    upload(service.address, "cam01", cat.data, "no-cat-says-rekognition.jpg")
    service.wait_idle()
    assert aws.rekognition.calls == 1
    aws.rekognition.labels = [CAT]
    mirrored = ImageOps.mirror(cat.image)  # another picture: not skipped as a repeat
    upload(service.address, "cam01", encoded(mirrored), "cat.jpg")
    service.wait_idle()
    assert aws.rekognition.calls == 2
    assert service.outcomes() == [
        ("cam02.jpg", "no_match"),
        ("no-cat-says-rekognition.jpg", "no_match"),
        ("cat.jpg", "alert"),
    ]
    (message,) = aws.sent_emails()
    assert "<tr><td><b>Cat</b></td><td>91%</td>" in message.get_body(("html",)).get_content()
