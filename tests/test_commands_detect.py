"""`ipcam-analysis detect`: labels as text or JSON lines, boxed pictures, and the exit code."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from harness.eval_images import EVAL_IMAGES
from ipcam_analysis.commands import detect
from ipcam_analysis.config import AppConfig

CONFIG = AppConfig.model_validate({"detector": {"type": "local"}})
PERSON = EVAL_IMAGES / "opencv_basketball1.jpg"
EMPTY = EVAL_IMAGES / "opencv_tree_f0000.jpg"


def run_detect(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser()
    detect.add_arguments(parser)
    return detect.run(parser.parse_args([str(a) for a in argv]), CONFIG)


def test_prints_each_label_with_its_confidence_and_box(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_detect(PERSON, EMPTY) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{PERSON}: local, ") and out[0].endswith(" ms")
    assert out[1].startswith("  Person 9") and " at left 0." in out[1]
    assert out[-2].startswith(f"{EMPTY}: local, ")
    assert out[-1] == "  nothing found"


def test_json_is_one_object_per_image_and_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_detect("--json", PERSON, EMPTY) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["image"] == str(PERSON)
    assert first["detector"] == "local"
    assert isinstance(first["ms"], int) and first["ms"] > 0
    person = first["labels"][0]
    assert person["name"] == "Person" and person["parents"] == []
    assert 90 < person["confidence"] <= 100
    assert set(person["box"]) == {"left", "top", "width", "height"}
    assert all(0 <= value <= 1 for value in person["box"].values())
    assert second["labels"] == []


def test_vehicles_list_their_parents_per_instance(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_detect("--json", EVAL_IMAGES / "darknet_dog.jpg") == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    cars = [entry for entry in labels if entry["name"] == "Car"]
    assert len(cars) >= 1
    assert all(car["parents"] == ["Vehicle", "Transportation"] for car in cars)


def test_unreadable_images_fail_the_run_but_not_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    missing = tmp_path / "missing.jpg"
    assert run_detect(text, PERSON, missing) == 1
    captured = capsys.readouterr()
    assert f"{PERSON}: local" in captured.out
    assert captured.err.splitlines() == [
        f"{text}: not a JPEG or PNG image",
        f"{missing}: cannot read the file (No such file or directory)",
    ]
    assert run_detect("--json", missing) == 1
    assert json.loads(capsys.readouterr().out) == {
        "image": str(missing),
        "error": "cannot read the file (No such file or directory)",
    }


def test_annotate_writes_the_boxed_pictures(tmp_path: Path) -> None:
    out_dir = tmp_path / "boxed"
    assert run_detect("--annotate", out_dir, PERSON, EMPTY) == 0
    boxed = Image.open(out_dir / "opencv_basketball1.jpg")
    original = Image.open(PERSON)
    assert boxed.size == original.size
    assert boxed.convert("RGB").tobytes() != original.convert("RGB").tobytes()
    assert (out_dir / "opencv_tree_f0000.jpg").is_file()  # unchanged, but written for every image
