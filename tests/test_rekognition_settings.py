"""Rekognition's settings are read from one place: the detector, the alert picture and the usage
page all follow `rekognition:` with any keys written under `detector: {type: rekognition}`."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from harness.aws import Moto, label
from harness.service import DATA, upload
from ipcam_analysis.config import load_config
from ipcam_analysis.errors import ConfigError

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 98.7, aliases=("Human",), boxes=((0.25, 0.2, 0.2, 0.6),))


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def test_detector_keys_hold_for_the_alert_picture_and_the_usage_page(
    run_service, aws: Moto
) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service(
        detector={"type": "rekognition", "image_resize_percent": 50, "price_per_1000_images": 4}
    )
    upload(service.address, "cam01", PERSON_JPEG, "person.jpg")
    service.wait_idle()
    width, height = Image.open(io.BytesIO(PERSON_JPEG)).size
    half = (round(width / 2), round(height / 2))
    (request,) = aws.rekognition.requests
    assert Image.open(io.BytesIO(request["image"])).size == half
    (message,) = aws.sent_emails()
    jpeg = next(p for p in message.iter_attachments() if p.get_content_type() == "image/jpeg")
    assert Image.open(io.BytesIO(jpeg.get_content())).size == half

    web = service.service.web.url
    assert json.loads(fetch(web + "api/usage"))["total"]["cost"] == 0.004
    page = fetch(web + "usage")
    assert "<strong>0.004</strong> estimated cost" in page
    assert "Cost estimated at 4.0 per 1000 images" in page


def test_a_key_written_differently_in_both_places_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "detector: {type: rekognition, image_resize_percent: 50}\n"
        "rekognition: {image_resize_percent: 70, max_labels: 20}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: detector.image_resize_percent is 50 but rekognition.image_resize_percent is "
        "70: write it in one place (the rekognition section)"
    )
    path.write_text(
        "detector: {type: rekognition, image_resize_percent: 50, max_labels: 20}\n"
        "rekognition: {max_labels: 20, min_confidence_percent: 90}\n"
    )
    settings = load_config(path).rekognition_settings()
    assert (settings.image_resize_percent, settings.max_labels) == (50, 20)
    assert settings.min_confidence_percent == 90
