"""The local detector on real photos: labels named as Rekognition names them, boxes in place."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from harness.eval_images import EVAL_IMAGES, centre_inside, eval_snapshot, overlap
from ipcam_analysis.config import AppConfig
from ipcam_analysis.config.messages import describe_validation_error
from ipcam_analysis.detect import build_detector, darknet, weights, yolo
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.rules import decide
from ipcam_analysis.values import Box, Detection, Label

# Regions read off the photos by eye, relative to the image.
CAMERAMAN = Box(0.0, 0.13, 0.63, 0.87)  # skimage_camera.jpg
DOG = Box(0.17, 0.33, 0.31, 0.56)  # darknet_dog.jpg
PICKUP = Box(0.6, 0.14, 0.3, 0.15)  # darknet_dog.jpg, behind the porch
WALKER = Box(0.76, 0.38, 0.05, 0.15)  # opencv_vtest_f0150.jpg, man crossing on the right


@pytest.fixture(scope="module")
def detector() -> LocalDetector:
    config = AppConfig.model_validate({"detector": {"type": "local"}})
    built = build_detector(config.detector_settings(), config.detector_context)
    assert isinstance(built, LocalDetector)
    return built


def named(detection: Detection, name: str) -> Label:
    return next(label for label in detection.labels if label.name == name)


def test_finds_the_person_where_he_stands(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot("skimage_camera.jpg"))
    assert detection.detector == "local"
    assert detection.cloud_calls == 0
    assert detection.elapsed_ms > 0
    person = named(detection, "Person")
    assert person.confidence > 60
    assert person.aliases == ("Human",)
    assert overlap(person.instances[0].box, CAMERAMAN) > 0.6
    assert person.confidence == person.instances[0].confidence  # the label's best instance


def test_vehicles_and_animals_carry_rekognition_parents(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot("darknet_dog.jpg"))
    car = named(detection, "Car")
    assert car.parents == ("Vehicle", "Transportation")
    assert any(centre_inside(i.box, PICKUP) for i in car.instances)
    dog = named(detection, "Dog")
    assert "Animal" in dog.parents
    assert overlap(dog.instances[0].box, DOG) > 0.6
    assert "Bicycle" in {label.name for label in detection.labels}
    # What users write means the same as with Rekognition.
    matched = decide(detection.labels, ["vehicle", "ANIMAL"], new_labels_only=False).matched
    assert {m.label.name for m in matched} >= {"Car", "Dog", "Bicycle"}
    assert decide(detection.labels, ["Person"], new_labels_only=False).alert is False


def test_an_empty_scene_has_nothing(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot("opencv_tree_f0000.jpg"))
    assert detection.labels == ()


def test_greyscale_night_picture(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot("opencv_vtest_f0150.jpg", greyscale=True))
    people = named(detection, "Person").instances
    assert len(people) >= 3
    assert any(centre_inside(i.box, WALKER) for i in people)


def test_every_box_lies_within_the_image(detector: LocalDetector) -> None:
    detection = detector.detect(eval_snapshot("opencv_vtest_f0000.jpg"))
    for label in detection.labels:
        for instance in label.instances:
            box = instance.box
            assert 0 <= box.left <= box.left + box.width <= 1
            assert 0 <= box.top <= box.top + box.height <= 1
            assert 25 <= instance.confidence <= 100


@pytest.mark.parametrize("model", list(weights.MODELS.values()), ids=list(weights.MODELS))
def test_the_converted_model_answers_like_opencvs_darknet_reader(model: weights.YoloModel) -> None:
    """Our ONNX conversion and decoding against OpenCV's own Darknet reader, on one real photo
    at 416×416: the same boxes with the same scores (YOLOv4-tiny: its split routes, scale_x_y)."""
    import onnxruntime

    cfg, weights_file = weights.locate(model.cfg), weights.locate(model.weights)
    picture = cv2.resize(cv2.imread(str(EVAL_IMAGES / "darknet_person.jpg")), (416, 416))
    blob = cv2.dnn.blobFromImage(picture, 1 / 255, (416, 416), swapRB=True)
    reference = cv2.dnn.readNetFromDarknet(str(cfg), str(weights_file))
    reference.setInput(blob)
    rows = np.vstack(reference.forward(reference.getUnconnectedOutLayersNames()))
    cell, class_id = np.nonzero(rows[:, 5:] >= 0.3)
    centre, size = rows[cell, :2], rows[cell, 2:4]
    corners = np.hstack([centre - size / 2, centre + size / 2])
    expected = sorted(
        (class_id, score, *box)
        for class_id, score, box in zip(class_id, rows[cell, 5 + class_id], corners, strict=True)
    )
    session = onnxruntime.InferenceSession(darknet.convert(cfg, weights_file))
    heads = darknet.yolo_heads(cfg)
    found = [
        yolo.decode(output, head, 416, 0.3)
        for output, head in zip(
            session.run([h.output for h in heads], {"image": blob}), heads, strict=True
        )
    ]
    ours = sorted(
        (class_id, score, *corners)
        for part in found
        for corners, class_id, score in zip(part.corners, part.class_ids, part.scores, strict=True)
    )
    assert len(ours) == len(expected) >= 5
    assert np.abs(np.array(ours, float) - np.array(expected, float)).max() < 1e-4


def test_missing_and_damaged_model_files_say_how_to_reinstall(tmp_path: Path) -> None:
    model = weights.MODELS[LocalDetectorConfig().model]
    for model_file in model.files:
        shutil.copy(weights.locate(model_file), tmp_path / model_file.name)
    LocalDetector(LocalDetectorConfig(), 25, model_folder=tmp_path)  # the intact copy loads

    damaged = tmp_path / model.weights.name
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(weights.ModelFilesError) as error:
        LocalDetector(LocalDetectorConfig(), 25, model_folder=tmp_path)
    assert model.weights.name in str(error.value)
    assert "damaged" in str(error.value)
    assert weights.INSTALL_COMMAND in str(error.value)

    (tmp_path / "coco.names").unlink()
    with pytest.raises(weights.ModelFilesError, match=r"coco\.names cannot be read"):
        weights.verified_in(tmp_path, model.names)


def test_a_missing_package_names_the_install_command() -> None:
    absent = weights.ModelFile("no-such-distribution-here", "x/model.bin", "0" * 64)
    with pytest.raises(weights.ModelFilesError, match=r"requirements/models\.txt"):
        weights.verified(absent)


def test_the_converted_model_is_cached_and_a_damaged_copy_replaced(
    tmp_path: Path,
) -> None:
    model = weights.MODELS[LocalDetectorConfig().model]
    cfg, weights_file = weights.locate(model.cfg), weights.locate(model.weights)
    cached = Path(darknet.cached_model(cfg, weights_file, "test", tmp_path))
    assert cached.parent == tmp_path
    assert darknet.cached_model(cfg, weights_file, "test", tmp_path) == str(
        cached
    )  # converted once
    damaged = cached.with_name(cached.name.replace("test-", f"{model.name}-{model.key}-"))
    damaged.write_bytes(b"not a model")
    detector = LocalDetector(LocalDetectorConfig(model_cache_dir=tmp_path), 25)
    assert damaged.stat().st_size == cached.stat().st_size
    assert named(detector.detect(eval_snapshot("skimage_camera.jpg")), "Person")


def test_config_section_and_a_typo_in_it() -> None:
    config = AppConfig.model_validate({"detector": {"type": "local", "threads": 1}})
    assert config.detector == LocalDetectorConfig(threads=1)
    with pytest.raises(ValidationError) as error:
        AppConfig.model_validate({"detector": {"type": "local", "thread": 1}})
    assert describe_validation_error(error.value, AppConfig) == (
        "unknown key 'detector.thread' (did you mean 'threads'?)"
    )
    with pytest.raises(ValidationError) as error:
        AppConfig.model_validate({"detector": {"type": "local", "input_sizes": [400]}})
    assert "multiple of 32" in describe_validation_error(error.value, AppConfig)
