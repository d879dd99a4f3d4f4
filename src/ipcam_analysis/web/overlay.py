"""The event page's box overlay: each label's boxes, with captions placed as on the alert picture
(imaging/captions.py), so that none collides with another or leaves the picture."""

from __future__ import annotations

from typing import Any

from ipcam_analysis.imaging import pixel_rect
from ipcam_analysis.imaging.captions import layout_captions, leader_line
from ipcam_analysis.values import Box

# Each label's boxes get one of these colours (classes in style.css), in label order.
BOX_COLOURS = 8
# Caption text relative to the picture's height, in the picture's own units (the SVG's
# viewBox), so it scales with the picture.
FONT_HEIGHT_FRACTION = 1 / 28
# A bold sans-serif glyph is at most about this wide per unit of font size; the SVG's
# textLength then fits the text to exactly the width planned, whatever the browser's font.
GLYPH_WIDTH_EM = 0.62
PADDING_EM = 0.25
FRAME_WIDTH = 3  # the boxes' stroke (style.css), in screen pixels: about as much in the picture


def overlay_layers(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One layer per label with boxes: its colour, and each box's caption place (None for all
    when the picture is too crowded: the checkboxes under it then name the labels)."""
    located = [label for label in event["labels"] if label["instances"]]
    size = (event.get("width") or 0, event.get("height") or 0)
    font = max(1, round(size[1] * FONT_HEIGHT_FRACTION))
    padding = max(1, round(font * PADDING_EM))
    found = sorted(
        (
            (
                -instance["confidence"],
                layer,
                box,
                f"{label['name']} {round(instance['confidence'])}%",
            )
            for layer, label in enumerate(located)
            for box, instance in enumerate(label["instances"])
        ),
    )
    rects = [
        pixel_rect(Box(**located[layer]["instances"][box]["box"]), size)
        for _, layer, box, _ in found
    ]
    sizes = [
        (round(len(text) * font * GLYPH_WIDTH_EM) + 2 * padding, font + 2 * padding)
        for *_, text in found
    ]
    planned = layout_captions(rects, sizes, size, FRAME_WIDTH) if size[1] else None
    captions: dict[tuple[int, int], dict[str, Any]] = {}
    for (_, layer, box, text), box_rect, rect in zip(found, rects, planned or (), strict=False):
        left, _, right, bottom = rect
        captions[(layer, box)] = {
            "leader": leader_line(box_rect, rect),
            "text": text,
            "x": left + padding,
            "y": bottom - padding - round(font * 0.2),  # the baseline, above the descenders
            "length": right - left + 1 - 2 * padding,
            "font_size": font,
            "rect": rect,
        }
    return [
        {
            **label,
            "colour": index % BOX_COLOURS,
            "triggered": label["name"] in event["triggered"],
            "captions": [captions.get((index, box)) for box in range(len(label["instances"]))],
        }
        for index, label in enumerate(located)
    ]
