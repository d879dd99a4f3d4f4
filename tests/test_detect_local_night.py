"""The local detector's night threshold: greyscale (IR) pictures held to their own confidence."""

from __future__ import annotations

import io

import pytest
from pydantic import ValidationError

from harness.eval_images import eval_snapshot
from harness.service import RunningService, upload
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.detect.thresholds import LabelThresholds
from ipcam_analysis.store import EventFilter

# Tourists before a museum: Person 37.8 % in colour, 35.7 % in greyscale. The Statue of Liberty
# in greyscale: Person 35.3 % (nothing in colour).
MUSEUM, STATUE = "gcompris_le_musee.jpg", "gcompris_statue_of_liberty.jpg"
TOURISTS = "gcompris_monument1.jpg"


def jpeg(name: str, *, greyscale: bool) -> bytes:
    buffer = io.BytesIO()
    eval_snapshot(name, greyscale=greyscale).image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def outcomes(service: RunningService) -> dict[str, str]:
    """Each upload's outcome, by file name."""
    found = service.service.store.events(EventFilter(limit=100))
    return {event["original_name"]: event["outcome"] for event in found}


@pytest.mark.parametrize("night_threshold", [None, {"Person": 40}])
def test_a_greyscale_picture_below_the_night_threshold_does_not_alert(
    run_service, night_threshold: dict[str, float] | None
) -> None:
    service = run_service(
        detector={"type": "local", "night_min_confidence_percent": night_threshold},
        labels=["Person"],
        workers=1,
        email={"transport": "none"},
    )
    uploads = {
        "museum-day.jpg": jpeg(MUSEUM, greyscale=False),
        "museum-night.jpg": jpeg(MUSEUM, greyscale=True),
        "statue-night.jpg": jpeg(STATUE, greyscale=True),
    }
    for name, data in uploads.items():
        upload(service.address, "cam01", data, name)
        service.wait_idle(timeout=120)
    # Without a night threshold, the night pictures alert at the day's 25 % like the day one.
    night = "no_match" if night_threshold else "alert"
    assert outcomes(service) == {
        "museum-day.jpg": "alert",
        "museum-night.jpg": night,
        "statue-night.jpg": night,
    }


def test_night_thresholds_by_label_keep_the_days_for_the_rest() -> None:
    settings = LocalDetectorConfig(night_min_confidence_percent={"Person": 40})
    assert settings.night_thresholds() == LabelThresholds(25.0, {"person": 40.0})
    assert LocalDetectorConfig(night_min_confidence_percent=35).night_thresholds() == (
        LabelThresholds(35.0)
    )
    assert LocalDetectorConfig().night_thresholds() is None
    for wrong in ({"Person": 0}, {"Person": 120}, {" ": 40}, "high"):
        with pytest.raises(ValidationError):
            LocalDetectorConfig(night_min_confidence_percent=wrong)  # type: ignore[arg-type]


def test_a_night_threshold_below_the_days_finds_weaker_people_at_night_only() -> None:
    # Tourists before the Dome of the Rock: Person 22.6 % in greyscale, 29 % in colour.
    settings = LocalDetectorConfig(night_min_confidence_percent={"Person": 20})
    lower = LocalDetector(settings, 25, night_thresholds=settings.night_thresholds())
    day = LocalDetector(LocalDetectorConfig(), 25)
    colour, grey = (eval_snapshot(TOURISTS, greyscale=g) for g in (False, True))
    assert lower.detect(colour).labels == day.detect(colour).labels
    assert "Person" not in {label.name for label in day.detect(grey).labels}
    night_people = [label for label in lower.detect(grey).labels if label.name == "Person"]
    assert [round(label.confidence) for label in night_people] == [23]
