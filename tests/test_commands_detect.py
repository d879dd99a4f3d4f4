"""`ipcam-analysis detect`: labels as text or JSON lines, boxed pictures, and the exit code."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from harness.aws import Moto
from harness.eval_images import EVAL_IMAGES
from harness.service import CLI, DATA, service_environment, upload
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


def test_prints_what_the_service_records_for_the_same_picture(
    run_service, aws: Moto, tmp_path: Path
) -> None:
    """The detector keeps one box per object but names the horse both Horse and Sheep; the
    service records one name per object (Person, Dog, Horse with Sheep as its runner-up). The
    console script says the same."""
    picture = DATA / "darknet_person.jpg"
    service = run_service(detector={"type": "local"}, labels=["Person"])
    upload(service.address, "cam01", picture.read_bytes(), "quick-start.jpg")
    service.wait_idle()
    with httpx.Client(base_url=service.service.web.url, timeout=30) as client:
        (event,) = client.get("/api/events").json()["events"]
    recorded = [
        _entry(label["name"], instance["confidence"], instance["box"], instance["runner_ups"])
        for label in event["labels"]
        for instance in label["instances"]
    ]
    command = [*CLI, "-c", str(tmp_path / "config.yaml"), "detect", "--json", str(picture)]
    environment = service_environment(aws)

    def printed(*options: str) -> list[dict[str, Any]]:
        finished = subprocess.run(
            [*command, *options], env=environment, capture_output=True, text=True, timeout=120
        )
        assert finished.returncode == 0, finished.stderr
        return json.loads(finished.stdout)["labels"]

    shown = [
        _entry(found["name"], found["confidence"], found["box"], found.get("runner_ups", []))
        for found in printed()
    ]
    assert sorted(entry[0] for entry in recorded) == ["Dog", "Horse", "Person"]
    assert _close(shown, recorded)
    assert {runner_up for entry in shown for runner_up in entry[3]} == {"Sheep"}
    # --raw: the detector's own answer, the horse also boxed as Sheep.
    assert sorted(found["name"] for found in printed("--raw")) == [
        "Dog",
        "Horse",
        "Person",
        "Sheep",
    ]


def _entry(
    name: str, confidence: float, box: dict[str, float], runner_ups: list[dict[str, Any]]
) -> tuple[str, float, tuple[float, ...], tuple[str, ...]]:
    return (
        name,
        confidence,
        tuple(box[side] for side in ("left", "top", "width", "height")),
        tuple(other["name"] for other in runner_ups),
    )


def _close(first: list[tuple[Any, ...]], second: list[tuple[Any, ...]]) -> bool:
    """The same objects, names and runner-ups, confidences and boxes to the rounding printed."""
    return all(
        a[0] == b[0]
        and a[3] == b[3]
        and abs(a[1] - b[1]) <= 0.1
        and all(abs(x - y) <= 0.001 for x, y in zip(a[2], b[2], strict=True))
        for a, b in zip(sorted(first), sorted(second), strict=True)
    )
