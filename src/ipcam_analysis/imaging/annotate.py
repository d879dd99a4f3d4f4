"""Draws the matched labels' boxes and captions on a snapshot (the alert picture, an event's
thumbnail), and encodes the result as JPEG."""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from ipcam_analysis.imaging.captions import Rect, layout_captions, leader_line
from ipcam_analysis.imaging.decode import IMAGE_WORK, to_rgb
from ipcam_analysis.values import Box, EventPictures, MatchedLabel, Snapshot

# Yellow like the original's boxes; the dark edge keeps them visible on snow, sky and headlights.
BOX_COLOUR = (255, 221, 0)
EDGE_COLOUR = (20, 20, 20)

# Sizes relative to the image's shorter side, so 320×240 and 1920×1080 read alike.
LINE_WIDTH_FRACTION = 1 / 270
FONT_SIZE_FRACTION = 1 / 25
MIN_LINE_WIDTH = 2
MIN_FONT_SIZE = 12

# Resizing first shrinks by a whole factor (a box average), then resamples what is left: with a
# gap of 2 (as Image.thumbnail does) the e-mailed picture looks as with a full LANCZOS.
SHARP_SCALING = (Image.Resampling.LANCZOS, 2.0)

# The dashboard's lists show pictures this wide. A thumbnail is only shrunk by a whole factor (a
# box average, 0.37 ms at 800×488), so it is 320 to 639 pixels wide and the browser fits it:
# resampling to exactly 320 cost 1.2 ms more, a tenth of an alert's own CPU.
THUMBNAIL_WIDTH = 320
THUMBNAIL_QUALITY = 75


def draw_boxes(
    image: Image.Image, matched: Sequence[MatchedLabel], resize_percent: int = 100
) -> Image.Image:
    """A new RGB copy of `image`, scaled down by `resize_percent`, each matched instance boxed."""
    with IMAGE_WORK:
        # Scaling makes a new image already; only an unscaled canvas needs the copy.
        canvas = _scaled(_as_rgb(image), resize_percent) if resize_percent < 100 else to_rgb(image)
        return _boxed(canvas, matched)


def thumbnail(image: Image.Image, matched: Sequence[MatchedLabel], width: int) -> Image.Image:
    """A copy for lists shown `width` pixels wide: shrunk by the whole factor that keeps it at
    least that wide (never enlarged), each matched instance boxed, with lines and captions as
    thick on the page as on a picture `width` pixels wide."""
    factor = max(1, image.width // width)
    with IMAGE_WORK:
        canvas = _as_rgb(image).reduce(factor) if factor > 1 else to_rgb(image)
        return _boxed(canvas, matched, canvas.width / width)


def event_pictures(snapshot: Snapshot) -> EventPictures:
    """The picture an event keeps: the camera's own JPEG bytes (a PNG or a clip's frame encoded)."""
    picture = snapshot.data if snapshot.format == "JPEG" else encode_jpeg(snapshot.image)
    return EventPictures(picture, snapshot.width, snapshot.height)


def thumbnail_jpeg(snapshot: Snapshot, matched: Sequence[MatchedLabel]) -> bytes:
    """An event's thumbnail for the dashboard's lists, its matched objects boxed, as JPEG."""
    small = thumbnail(snapshot.image, matched, THUMBNAIL_WIDTH)
    return encode_jpeg(small, quality=THUMBNAIL_QUALITY)


def _boxed(
    canvas: Image.Image, matched: Sequence[MatchedLabel], shown_at: float = 1.0
) -> Image.Image:
    """`canvas` (ours to draw on) with the boxes and captions; `shown_at`: how many of its
    pixels the page shows as one (the smallest lines and letters are that much bigger)."""
    plan = plan_annotation(canvas.size, matched, shown_at)
    if plan.legend:
        canvas = _with_legend_band(canvas, plan)
    draw = ImageDraw.Draw(canvas)
    for rect in plan.boxes:
        # The dark frame is one pixel wider on each side than the yellow line it surrounds.
        left, top, right, bottom = rect
        draw.rectangle(
            (left - 1, top - 1, right + 1, bottom + 1),
            outline=EDGE_COLOUR,
            width=plan.line_width + 2,
        )
        draw.rectangle(rect, outline=BOX_COLOUR, width=plan.line_width)
    # Under the captions, so a leader never crosses a caption's text.
    for box, rect in zip(plan.boxes, plan.captions, strict=False):
        line = leader_line(box, rect)
        if line is not None:
            draw.line(line, fill=BOX_COLOUR, width=max(1, plan.line_width // 2))
    font = _font(plan.font_size)
    for text, rect in zip(plan.texts, plan.captions, strict=True):
        _draw_caption(draw, text, rect, font, plan.line_width)
    for text, rect in zip(plan.legend, plan.legend_rects, strict=True):
        _draw_caption(draw, text, rect, font, plan.line_width)
    return canvas


@dataclass(frozen=True)
class AnnotationPlan:
    """What is drawn where on a picture of `size`, decided before any pixel is touched.

    Either each box has its caption (`captions`, same order as `boxes` and `texts`), or the
    picture was too crowded and `legend` lines are written in a band added below it
    (`legend_rects`; `size` then includes the band).
    """

    size: tuple[int, int]
    line_width: int
    font_size: int
    boxes: tuple[Rect, ...]
    texts: tuple[str, ...]
    captions: tuple[Rect, ...]
    legend: tuple[str, ...] = ()
    legend_rects: tuple[Rect, ...] = ()


def plan_annotation(
    size: tuple[int, int], matched: Sequence[MatchedLabel], shown_at: float = 1.0
) -> AnnotationPlan:
    """Boxes, and captions that collide with nothing, or a legend when they cannot all fit.

    Captions are placed most confident first, so the best spots go to what matters most. The
    smallest lines and letters are `shown_at` times their size, for a picture shown smaller."""
    short_side = min(size)
    line_width = max(round(MIN_LINE_WIDTH * shown_at), round(short_side * LINE_WIDTH_FRACTION))
    font_size = max(round(MIN_FONT_SIZE * shown_at), round(short_side * FONT_SIZE_FRACTION))
    found = sorted(
        (
            (-instance.confidence, pixel_rect(instance.box, size), match.display_name)
            for match in matched
            for instance in match.label.instances
        ),
        key=lambda item: item[0],
    )
    boxes = tuple(rect for _, rect, _ in found)
    texts = tuple(f"{name} {round(-negated)}%" for negated, _, name in found)
    font = _font(font_size)
    sizes = [caption_size(text, font, line_width) for text in texts]
    captions = layout_captions(boxes, sizes, size, line_width)
    if captions is not None:
        return AnnotationPlan(size, line_width, font_size, boxes, texts, captions)
    legend = legend_lines(matched, size[0] - 2 * line_width, font, line_width)
    rects = []
    y = size[1] + line_width
    for text in legend:
        width, height = caption_size(text, font, line_width)
        rects.append((line_width, y, line_width + width - 1, y + height - 1))
        y += height
    band_size = (size[0], y + line_width)
    return AnnotationPlan(band_size, line_width, font_size, boxes, (), (), legend, tuple(rects))


def legend_lines(
    matched: Sequence[MatchedLabel],
    max_width: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    padding: int,
) -> tuple[str, ...]:
    """`Person ×10 (53–95%) · Truck 44%`, wrapped to lines no wider than `max_width`."""
    entries = []
    for match in matched:
        confidences = sorted(round(i.confidence) for i in match.label.instances) or [
            round(match.label.confidence)
        ]
        count = len(confidences)
        spread = f"{confidences[0]}–{confidences[-1]}%" if count > 1 else f"{confidences[0]}%"
        entries.append(
            f"{match.display_name} ×{count} ({spread})"
            if count > 1
            else f"{match.display_name} {spread}"
        )
    lines: list[str] = []
    for entry in entries:
        joined = f"{lines[-1]} · {entry}" if lines else entry
        if lines and caption_size(joined, font, padding)[0] <= max_width:
            lines[-1] = joined
        else:
            lines.append(entry)
    return tuple(lines)


def caption_size(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, padding: int
) -> tuple[int, int]:
    """A caption's width and height with its padding, from the font's metrics (no drawing)."""
    left, top, right, bottom = _text_box(text, font)
    # Whole pixels: FreeType's box is in floats (whole unless a stroke is asked for).
    return math.ceil(right - left) + 2 * padding, math.ceil(bottom - top) + 2 * padding


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """The image as JPEG bytes (converted to RGB first if needed)."""
    buffer = io.BytesIO()
    # Colour at half resolution (4:2:0, as cameras save it): full-resolution colour kept the
    # yellow captions a shade crisper at 3× zoom, no different on a phone, for twice the time
    # (2.7 → 1.3 ms at 800×488) and 14 % more bytes. No `optimize`: its second pass took 2.5×
    # the time to save 2 % of the bytes.
    with IMAGE_WORK:
        _as_rgb(image).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return buffer.getvalue()


def pixel_rect(box: Box, size: tuple[int, int]) -> Rect:
    """A relative box as pixels, clamped to the image: detectors report boxes that overhang it."""
    width, height = size
    left = _clamp(round(box.left * width), 0, width - 1)
    top = _clamp(round(box.top * height), 0, height - 1)
    right = _clamp(round((box.left + box.width) * width) - 1, left, width - 1)
    bottom = _clamp(round((box.top + box.height) * height) - 1, top, height - 1)
    return left, top, right, bottom


def _draw_caption(
    draw: ImageDraw.ImageDraw,
    text: str,
    rect: Rect,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    padding: int,
) -> None:
    x, y, right, bottom = rect
    text_left, text_top, _, _ = _text_box(text, font)
    draw.rectangle((x, y, right, bottom), fill=EDGE_COLOUR)
    # getbbox's offsets are the font's internal leading; subtracting them centres the text.
    draw.text((x + padding - text_left, y + padding - text_top), text, font=font, fill=BOX_COLOUR)


def _with_legend_band(canvas: Image.Image, plan: AnnotationPlan) -> Image.Image:
    """The picture on top of a dark band tall enough for the legend."""
    extended = Image.new("RGB", plan.size, EDGE_COLOUR)
    extended.paste(canvas, (0, 0))
    return extended


# FreeType lays a text out, hinting every glyph, to measure it: a caption is measured to plan it
# and again to draw it, on the alert picture and on the thumbnail, and "Person 97%" recurs.
@functools.lru_cache(maxsize=1024)
def _text_box(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> tuple[float, float, float, float]:
    return font.getbbox(text)


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _scaled(image: Image.Image, resize_percent: int) -> Image.Image:
    width, height = (max(1, round(side * resize_percent / 100)) for side in image.size)
    resample, reducing_gap = SHARP_SCALING
    return image.resize((width, height), resample, reducing_gap=reducing_gap)


def _as_rgb(image: Image.Image) -> Image.Image:
    """The image itself when it is plain RGB already (to read, not to draw on), else a copy."""
    return image if image.mode == "RGB" and not image.has_transparency_data else to_rgb(image)


def _clamp(value: int, lowest: int, highest: int) -> int:
    return max(lowest, min(value, highest))
