"""`ipcam-analysis evaluate`: per-class results, speed and memory over a folder with labels.csv."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pytest

from harness.aws import REGION, Moto, label
from harness.eval_images import EVAL_IMAGES
from ipcam_analysis.commands import evaluate
from ipcam_analysis.config import AppConfig
from ipcam_analysis.errors import UserError

SUBSET = [
    "opencv_basketball1.jpg",  # person
    "darknet_dog.jpg",  # vehicle, dog
    "opencv_tree_f0000.jpg",  # nothing
    "skimage_coffee.jpg",  # nothing
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four of the evaluation photos with their rows of the real labels.csv."""
    with (EVAL_IMAGES / "labels.csv").open(newline="") as stream:
        reader = csv.DictReader(stream)
        rows = [row for row in reader if row["file"] in SUBSET]
        columns = reader.fieldnames or []
    with (tmp_path / "labels.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows(rows)
    for name in SUBSET:
        shutil.copy(EVAL_IMAGES / name, tmp_path / name)
    return tmp_path


def run_evaluate(*argv: str | Path, config: AppConfig | None = None) -> int:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    args = parser.parse_args([str(a) for a in argv])
    return evaluate.run(args, config or AppConfig.model_validate({"detector": {"type": "local"}}))


def test_prints_the_table(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_evaluate(folder) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"local on {folder} (4 images, colour)"
    assert out[1].split() == ["class", "found/present", "false", "alarms/absent"]
    rows = {line.split()[0]: line.split()[1:] for line in out[2:7]}
    assert list(rows) == ["person", "vehicle", "dog", "cat", "bird"]  # metadata columns skipped
    assert rows["person"] == ["1/1", "(100%)", "0/3"]
    assert rows["vehicle"] == ["1/1", "(100%)", "0/3"]
    assert rows["cat"] == ["0/0", "0/4"]
    assert out[7].startswith("per image: median ")
    assert "peak RSS" in out[7] and "cloud calls 0 (rekognition alone: 4)" in out[7]


def test_json_greyscale_and_small(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_evaluate(folder, "--json", "--greyscale", "--size", "320x240") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["variant"] == "greyscale, 320×240"
    assert summary["images"] == 4
    person = summary["classes"]["person"]
    assert (person["present"], person["absent"]) == (1, 3)
    assert person["found"] + len(person["missed_images"]) == 1
    assert summary["ms_median"] > 0 and summary["ms_p90"] >= summary["ms_median"]
    # The peak is this whole test process's (the suite's before it too): only its presence
    # is checked here; the figures belong in docs/performance.md.
    assert summary["peak_rss_mb"] > 50


def test_cascade_counts_the_cloud_calls_it_would_make(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = AppConfig.model_validate({"detector": {"type": "cascade"}, "labels": ["Person"]})
    assert run_evaluate(folder, "--no-cloud", "--json", config=config) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["detector"] == "cascade (local stage only)"
    assert (summary["cloud_calls"], summary["cloud_calls_rekognition_alone"]) == (1, 4)
    # The person picture goes to the cloud; the dog's does not: this camera watches people.
    assert summary["classes"]["person"]["sent_to_cloud"] == 1
    assert summary["classes"]["dog"]["sent_to_cloud"] == 0


def test_cascade_with_rekognition(
    folder: Path, aws: Moto, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.rekognition.labels = [label("Person", 99.0)]
    config = AppConfig.model_validate(
        {"detector": {"type": "cascade"}, "labels": ["Person"], "aws_region": REGION}
    )
    assert run_evaluate(folder, "--json", config=config) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cloud_calls"] == aws.rekognition.calls == 1
    assert summary["classes"]["person"]["found"] == 1


def test_mistakes_are_one_line_errors(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="only applies to --detector cascade"):
        run_evaluate(folder, "--no-cloud")
    with pytest.raises(UserError, match="cannot read the truth file"):
        run_evaluate(tmp_path / "nowhere")
    (folder / "opencv_tree_f0000.jpg").write_text("broken")
    with pytest.raises(UserError, match=r"opencv_tree_f0000\.jpg: not a JPEG or PNG image"):
        run_evaluate(folder)
    with pytest.raises(SystemExit):
        run_evaluate(folder, "--size", "320")
