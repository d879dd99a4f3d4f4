#!/usr/bin/env python3
"""Cloud calls on a day's sequence of uploads: the original's Rekognition-on-every-upload versus
the cascade with duplicate and stationary suppression, and whether the alerts that matter
(a new person, a new vehicle) are still raised.

Rekognition is a moto server whose DetectLabels answers with what the local detector sees at
50 % or more (there is no real Rekognition here): the table measures how many calls each
configuration makes and which uploads alert, not Rekognition's accuracy.

    .venv/bin/python bench/cost_effect.py [--json bench/results/cost_effect.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from harness.aws import SCRIPT, aws_environment, start_moto  # noqa: E402
from harness.service import PASSWORDS, upload, wait_until  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.imaging import decode_snapshot  # noqa: E402
from ipcam_analysis.service.app import build_service  # noqa: E402
from ipcam_analysis.settings import config_folder  # noqa: E402
from ipcam_analysis.store import EventFilter  # noqa: E402

IMAGES = ROOT / "eval" / "images"
BACKGROUND = "opencv_vtest_median_background.jpg"
TREE = "opencv_tree_f0000.jpg"
# (camera, image, what a person watching would want): a day of a yard camera and a tree camera.
SEQUENCE: list[tuple[str, str, str]] = [
    *[("cam01", BACKGROUND, "")] * 4,  # light changes: only the parked van and car
    ("cam01", "opencv_vtest_f0000.jpg", "new person, new vehicle"),
    *[("cam01", "opencv_vtest_f0000.jpg", "")] * 2,  # the camera repeats its snapshot
    ("cam01", "opencv_vtest_f0150.jpg", "new person"),
    ("cam01", "opencv_vtest_f0300.jpg", "new person"),
    ("cam01", "opencv_vtest_f0450.jpg", "new person"),
    ("cam01", "opencv_vtest_f0600.jpg", "new person"),
    ("cam01", "opencv_vtest_f0750.jpg", "new person"),
    *[("cam01", BACKGROUND, "")] * 4,
    *[("cam02", TREE, "")] * 6,  # wind in the tree
]
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "original: rekognition on every upload": {"detector": {"type": "rekognition"}},
    "cascade": {"detector": {"type": "cascade"}},
    "cascade + duplicate + stationary": {
        "detector": {"type": "cascade"},
        "filters": {"duplicate_hash_distance": 8, "stationary": {"enabled": True}},
    },
}


def stand_in_rekognition() -> None:
    """DetectLabels answers what the local detector sees at 50 % or more."""
    detector = LocalDetector(LocalDetectorConfig(), 50)
    answers: dict[bytes, list[dict[str, Any]]] = {}

    def answer(image: bytes) -> list[dict[str, Any]]:
        if image not in answers:
            detection = detector.detect(decode_snapshot(image))
            answers[image] = [
                {
                    "Name": label.name,
                    "Confidence": label.confidence,
                    "Parents": [{"Name": p} for p in label.parents],
                    "Aliases": [{"Name": a} for a in label.aliases],
                    "Categories": [],
                    "Instances": [
                        {
                            "Confidence": i.confidence,
                            "BoundingBox": {
                                "Left": i.box.left,
                                "Top": i.box.top,
                                "Width": i.box.width,
                                "Height": i.box.height,
                            },
                        }
                        for i in label.instances
                    ],
                }
                for label in detection.labels
            ]
        return answers[image]

    SCRIPT.answer = answer


def run_configuration(name: str, overrides: dict[str, Any], work: Path) -> dict[str, Any]:
    folder = work / name.replace(" ", "_").replace(":", "")
    settings = {
        "labels": ["Person", "Vehicle"],
        "data_dir": str(folder / "data"),
        "workers": 1,
        "aws_region": "eu-west-1",
        "email": {"transport": "none"},
        "web": {"enabled": False},
        "ftp_server": {
            "root_dir": str(folder / "ftp"),
            "host": "127.0.0.1",
            "port": 0,
            "users": dict(PASSWORDS),
        },
        **overrides,
    }
    config = AppConfig.model_validate(settings, context=config_folder(folder))
    service = build_service(config)
    service.start()
    calls_before = SCRIPT.calls
    try:
        for number, (camera, image, _) in enumerate(SEQUENCE):
            upload(service.ftp.address, camera, (IMAGES / image).read_bytes(), f"{number:02d}.jpg")
            wait_until(lambda: service.queue.depth() == 0, 120, "the upload to be processed")
        events = list(reversed(service.store.events(EventFilter(limit=500))))
    finally:
        service.stop()
    alerts = [event["outcome"] == "alert" for event in events]
    wanted = [bool(expected) for _, _, expected in SEQUENCE]
    return {
        "configuration": name,
        "uploads": len(SEQUENCE),
        "cloud_calls": SCRIPT.calls - calls_before,
        "alerts": sum(alerts),
        "alerts_that_matter_raised": sum(a and w for a, w in zip(alerts, wanted, strict=True)),
        "alerts_that_matter": sum(wanted),
        "outcomes": [event["outcome"] for event in events],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "cost_effect.json"
    )
    args = parser.parse_args()
    moto, endpoint = start_moto()
    import os

    os.environ.update(aws_environment(endpoint))
    stand_in_rekognition()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name, overrides in CONFIGURATIONS.items():
            results.append(run_configuration(name, overrides, Path(work)))
    moto.stop()
    print(
        f"{'configuration':40} {'uploads':>7} {'cloud calls':>11} {'alerts':>6} {'that matter':>12}"
    )
    for row in results:
        print(
            f"{row['configuration']:40} {row['uploads']:7d} {row['cloud_calls']:11d} "
            f"{row['alerts']:6d} {row['alerts_that_matter_raised']:>5d} of {row['alerts_that_matter']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"measured_at": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2)
    )
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
