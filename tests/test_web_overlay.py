"""The event page's captions: placed as the alert picture's, inside the picture, colliding with
nothing, on real crowded detections."""

from __future__ import annotations

import pytest

from ipcam_analysis.imaging import pixel_rect
from ipcam_analysis.imaging.annotate import AnnotationPlan
from ipcam_analysis.values import Box, label_to_dict
from ipcam_analysis.web.overlay import overlay_layers
from tests.test_annotate import CROWDED, assert_readable, detected


@pytest.mark.parametrize("image", CROWDED)
@pytest.mark.parametrize("size", [(768, 576), (320, 240), (2560, 1440)])
def test_captions_of_a_crowded_event_stay_inside_and_apart(
    image: str, size: tuple[int, int]
) -> None:
    labels = [match.label for match in detected(image)]
    event = {
        "labels": [label_to_dict(label) for label in labels],
        "triggered": [labels[0].name],
        "width": size[0],
        "height": size[1],
    }

    layers = overlay_layers(event)

    assert [layer["name"] for layer in layers] == [label.name for label in labels]
    assert layers[0]["triggered"] and not layers[-1]["triggered"]
    placed = [
        (pixel_rect(Box(**instance["box"]), size), caption)
        for layer in layers
        for instance, caption in zip(layer["instances"], layer["captions"], strict=True)
    ]
    captions = [caption for _, caption in placed]
    assert all(caption is not None for caption in captions)  # none fell back to the checkboxes
    boxes = tuple(rect for rect, _ in placed)
    rects = tuple(caption["rect"] for caption in captions)
    texts = tuple(caption["text"] for caption in captions)
    assert_readable(AnnotationPlan(size, 3, 12, boxes, texts, rects), size)
    for caption in captions:  # the text's own span lies within its planned rectangle
        left, top, right, bottom = caption["rect"]
        assert left <= caption["x"] and caption["x"] + caption["length"] <= right + 1
        assert top < caption["y"] <= bottom


def test_a_picture_too_crowded_for_captions_has_none_and_keeps_its_boxes() -> None:
    people = [
        {
            "box": {
                "left": 0.02 + 0.16 * (n % 6),
                "top": 0.02 + 0.19 * (n // 6),
                "width": 0.14,
                "height": 0.17,
            },
            "confidence": 90 - n,
            "runner_ups": [],
        }
        for n in range(30)
    ]
    event = {
        "labels": [{"name": "Person", "confidence": 90, "instances": people}],
        "triggered": ["Person"],
        "width": 320,
        "height": 240,
    }
    (layer,) = overlay_layers(event)
    assert len(layer["instances"]) == 30 and layer["captions"] == [None] * 30
