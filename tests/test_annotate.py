"""Boxes and captions on real snapshots: where they land, how big, and on which image modes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ipcam_analysis.imaging import THUMBNAIL_WIDTH, draw_boxes, encode_jpeg
from ipcam_analysis.imaging.annotate import (
    EDGE_COLOUR,
    AnnotationPlan,
    plan_annotation,
    thumbnail,
)
from ipcam_analysis.imaging.captions import frame_strips, layout_captions, overlaps
from ipcam_analysis.rules import merge_same_objects
from ipcam_analysis.values import Box, Instance, Label, MatchedLabel, detection_from_dict

DATA = Path(__file__).parent / "data"
PERSON_PHOTO = DATA / "darknet_person.jpg"  # 640×424: a person, a dog and a horse
TREE_CAMERA = DATA / "opencv_tree_f0000.jpg"  # 320×240 frame of a fixed camera

# Where the objects are in darknet_person.jpg, roughly, as a detector would report them.
PERSON_BOX = Box(0.30, 0.20, 0.20, 0.58)
DOG_BOX = Box(0.10, 0.60, 0.22, 0.30)
HORSE_BOX = Box(0.63, 0.32, 0.32, 0.50)

GREY = (128, 128, 128)


def matched(name: str, box: Box, confidence: float = 98.7) -> MatchedLabel:
    label = Label(name, confidence, instances=(Instance(box, confidence),))
    return MatchedLabel(label, name)


def is_yellow(rgb: tuple[int, ...]) -> bool:
    red, green, blue = rgb[:3]
    return red > 180 and green > 150 and blue < 110


def yellow_share_on_edges(image: Image.Image, box: Box) -> float:
    """How much of the middle half of the box's four edges (one pixel in) is yellow."""
    width, height = image.size
    left, top = round(box.left * width) + 1, round(box.top * height) + 1
    right = round((box.left + box.width) * width) - 2
    bottom = round((box.top + box.height) * height) - 2
    ys = range(top + (bottom - top) // 4, bottom - (bottom - top) // 4)
    xs = range(left + (right - left) // 4, right - (right - left) // 4)
    points = [(x, y) for y in ys for x in (left, right)] + [
        (x, y) for x in xs for y in (top, bottom)
    ]
    rgb = image.convert("RGB")
    return sum(is_yellow(rgb.getpixel(point)) for point in points) / len(points)


def grey_image(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, GREY)


def caption_height_below(image: Image.Image, box: Box) -> int:
    """Rows of caption under the box, counted down its left edge until the grey shows again."""
    width, height = image.size
    x = round(box.left * width) + 2
    y = round((box.top + box.height) * height)
    rows = 0
    while y + rows < height and image.getpixel((x, y + rows)) != GREY:
        rows += 1
    return rows


def line_width_at_left(image: Image.Image, box: Box) -> int:
    """Yellow pixels in a row across the box's left edge, half-way down."""
    width, height = image.size
    y = round((box.top + box.height / 2) * height)
    left = round(box.left * width)
    return sum(is_yellow(image.getpixel((x, y))) for x in range(left - 3, left + 20))


def test_boxes_only_the_labels_passed_on_a_real_photo() -> None:
    photo = Image.open(PERSON_PHOTO)
    result = draw_boxes(photo, [matched("Person", PERSON_BOX), matched("Horse", HORSE_BOX)])

    assert result.mode == "RGB" and result.size == photo.size
    assert yellow_share_on_edges(result, PERSON_BOX) > 0.95
    assert yellow_share_on_edges(result, HORSE_BOX) > 0.95
    assert yellow_share_on_edges(result, DOG_BOX) < 0.05  # the dog was not matched
    # Inside the box the photo is untouched.
    centre = (round(0.40 * photo.width), round(0.45 * photo.height))
    assert result.getpixel(centre) == photo.convert("RGB").getpixel(centre)


def test_returns_a_new_image_and_leaves_the_input_alone() -> None:
    photo = Image.open(PERSON_PHOTO)
    before = photo.tobytes()
    result = draw_boxes(photo, [matched("Person", PERSON_BOX)])
    assert result is not photo
    assert photo.tobytes() == before


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(50, (320, 212)), (25, (160, 106)), (100, (640, 424)), (150, (640, 424))],
)
def test_resize_percent_scales_down_and_never_up(percent: int, expected: tuple[int, int]) -> None:
    result = draw_boxes(Image.open(PERSON_PHOTO), [matched("Person", PERSON_BOX)], percent)
    assert result.size == expected
    assert yellow_share_on_edges(result, PERSON_BOX) > 0.9


def test_no_labels_means_only_conversion_and_resize() -> None:
    result = draw_boxes(Image.open(TREE_CAMERA).convert("L"), [], 50)
    assert result.mode == "RGB" and result.size == (160, 120)


def _greyscale_16_bit(image: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 256)


def _half_transparent(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, rgba.width // 2, rgba.height))  # left half see-through
    return rgba


MODES = {
    "L": lambda image: image.convert("L"),  # night-time IR snapshots
    "RGBA": _half_transparent,
    "P": lambda image: image.convert("P", palette=Image.Palette.ADAPTIVE),
    "I;16": _greyscale_16_bit,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(320, 240), (1920, 1080)])
def test_any_mode_and_size_gets_yellow_boxes(mode: str, size: tuple[int, int]) -> None:
    source = MODES[mode](Image.open(TREE_CAMERA).resize(size))
    assert source.mode == mode
    box = Box(0.55, 0.2, 0.3, 0.5)  # in the opaque right half

    result = draw_boxes(source, [matched("Person", box)])

    assert result.mode == "RGB" and result.size == size
    assert yellow_share_on_edges(result, box) > 0.95
    # The scene itself keeps its brightness (16-bit values are scaled, not clipped to white).
    grey = Image.open(TREE_CAMERA).resize(size).convert("L")
    probe = (size[0] // 4 * 3, size[1] - 5)
    assert abs(result.convert("L").getpixel(probe) - grey.getpixel(probe)) < 12


def test_transparent_parts_become_white() -> None:
    source = _half_transparent(Image.open(TREE_CAMERA))
    result = draw_boxes(source, [])
    assert result.getpixel((10, 120)) == (255, 255, 255)


def caption_height(size: tuple[int, int], box: Box) -> int:
    (caption,) = plan_annotation(size, [matched("Person", box)]).captions
    return caption[3] - caption[1] + 1


def test_caption_and_lines_grow_with_the_image() -> None:
    box = Box(0.2, 0.2, 0.4, 0.4)
    small = draw_boxes(grey_image((320, 240)), [matched("Person", box)])
    large = draw_boxes(grey_image((1920, 1080)), [matched("Person", box)])

    small_caption = caption_height((320, 240), box)
    large_caption = caption_height((1920, 1080), box)
    assert small_caption >= 12  # legible on the smallest snapshot
    assert small_caption <= 0.12 * 240 and large_caption <= 0.12 * 1080
    assert 2.5 <= large_caption / small_caption <= 6
    assert line_width_at_left(large, box) > line_width_at_left(small, box) >= 2


def test_a_large_box_takes_its_caption_inside_a_small_one_below() -> None:
    large, small = Box(0.3, 0.4, 0.4, 0.5), Box(0.05, 0.1, 0.1, 0.1)
    plan = plan_annotation((320, 240), [matched("Person", large), matched("Cat", small, 50)])
    (large_rect, small_rect) = plan.boxes
    inside, below = plan.captions
    assert large_rect[0] < inside[0] and large_rect[1] < inside[1]
    assert inside[2] < large_rect[2] and inside[3] < large_rect[3]
    assert below[1] > small_rect[3]  # just under the small box
    assert below[1] - small_rect[3] <= 3


def test_caption_goes_above_when_the_box_reaches_the_bottom() -> None:
    box = Box(0.3, 0.9, 0.4, 0.1)  # too low for a caption inside
    result = draw_boxes(grey_image((320, 240)), [matched("Person", box)])
    x, box_top = round(0.3 * 320) + 2, round(0.9 * 240)
    assert result.getpixel((x, box_top - 4)) != GREY  # caption just above the box
    assert result.getpixel((x, box_top - 40)) == GREY


def test_caption_goes_inside_when_the_box_fills_the_image() -> None:
    box = Box(-0.05, -0.05, 1.1, 1.1)  # detectors do report boxes overhanging the edges
    result = draw_boxes(grey_image((320, 240)), [matched("Person", box)])
    assert is_yellow(result.getpixel((0, 120))) and is_yellow(result.getpixel((319, 120)))
    assert result.getpixel((6, 6)) != GREY  # caption in the top-left corner, inside
    assert result.getpixel((160, 120)) == GREY


def assert_readable(plan: AnnotationPlan, picture: tuple[int, int]) -> None:
    """Every caption inside the picture; none over another caption, over another box's frame,
    or over a box apart from its own."""
    width, height = picture
    for index, caption in enumerate(plan.captions):
        assert 0 <= caption[0] <= caption[2] < width and 0 <= caption[1] <= caption[3] < height
        for other in plan.captions[index + 1 :]:
            assert not overlaps(caption, other)
        own = plan.boxes[index]
        for other_index, box in enumerate(plan.boxes):
            if other_index == index:
                continue
            frame = frame_strips(box, plan.line_width)
            assert not any(overlaps(caption, strip) for strip in frame)
            if not overlaps(own, box):
                assert not overlaps(caption, box)


DETECTIONS = json.loads((DATA / "local_detections.json").read_text())
CROWDED = ["opencv_vtest_f0150.jpg", "opencv_vtest_f0300.jpg", "opencv_vtest_f0750.jpg"]


def detected(image: str) -> list[MatchedLabel]:
    labels = detection_from_dict(DETECTIONS[image]).labels
    return [MatchedLabel(label, label.name) for label in merge_same_objects(labels, lambda _: 0)]


@pytest.mark.parametrize("image", [*CROWDED, "darknet_horses.jpg", "darknet_dog.jpg"])
@pytest.mark.parametrize("width", [None, 320, 2560])
def test_crowded_real_scenes_get_captions_that_collide_with_nothing(
    image: str, width: int | None
) -> None:
    photo = Image.open(DATA / image)
    if width is not None:  # the thumbnail, and a 2560-pixel camera
        photo = photo.resize((width, round(photo.height * width / photo.width)))
    found = detected(image)

    plan = plan_annotation(photo.size, found)

    assert len(plan.boxes) == sum(len(match.label.instances) for match in found) >= 5
    assert len(plan.captions) == len(plan.boxes) or plan.legend
    assert_readable(plan, photo.size)
    drawn = draw_boxes(photo, found)
    assert drawn.size == plan.size
    for caption in plan.captions:  # drawn where planned: the caption's dark background
        assert drawn.getpixel((caption[0], caption[1])) == EDGE_COLOUR


def test_vtest_frame_150_names_each_object_once_with_a_readable_caption() -> None:
    plan = plan_annotation((768, 576), detected("opencv_vtest_f0150.jpg"))
    assert sorted(plan.texts) == [
        "Car 80%",
        "Person 53%",
        "Person 66%",
        "Person 78%",
        "Person 86%",
        "Person 95%",
        "Truck 44%",
    ]
    assert not plan.legend


def test_a_picture_too_crowded_for_captions_gets_a_legend_below() -> None:
    # Thirty people in a 320×240 frame: no room for thirty captions.
    people = [
        Instance(Box(0.02 + 0.16 * (n % 6), 0.02 + 0.19 * (n // 6), 0.14, 0.17), 90 - n)
        for n in range(30)
    ]
    crowd = [MatchedLabel(Label("Person", 90, instances=tuple(people)), "Person")]
    cars = [matched("Car", Box(0.5, 0.5, 0.1, 0.1), 61)]

    plan = plan_annotation((320, 240), crowd + cars)

    assert plan.captions == () and plan.legend == ("Person ×30 (61–90%) · Car 61%",)
    assert plan.size[0] == 320 and plan.size[1] > 240
    for rect in plan.legend_rects:  # in the band under the picture, inside the new size
        assert 240 <= rect[1] <= rect[3] < plan.size[1] and 0 <= rect[0] <= rect[2] < 320
    drawn = draw_boxes(grey_image((320, 240)), crowd + cars)
    assert drawn.size == plan.size
    assert drawn.getpixel((29, 25)) == GREY  # no caption inside the first person's box


SIDES = st.integers(min_value=40, max_value=2000)
BOXES = st.lists(st.tuples(*[st.floats(0, 1)] * 4), min_size=1, max_size=12)


@given(image=st.tuples(SIDES, SIDES), corners=BOXES, caption=st.tuples(SIDES, SIDES))
def test_layout_never_leaves_the_image_nor_collides(
    image: tuple[int, int], corners: list[tuple[float, ...]], caption: tuple[int, int]
) -> None:
    width, height = image
    caption = (min(caption[0], width // 3), min(caption[1], height // 6))
    boxes = []
    for box in corners:
        x0, x1 = sorted(round(c * (width - 1)) for c in box[:2])
        y0, y1 = sorted(round(c * (height - 1)) for c in box[2:])
        boxes.append((x0, y0, x1, y1))

    captions = layout_captions(boxes, [caption] * len(boxes), image, frame_width=2)

    if captions is not None:
        texts = ("x",) * len(boxes)
        assert_readable(AnnotationPlan(image, 2, 12, tuple(boxes), texts, captions), image)
        assert all(
            (right - left + 1, bottom - top + 1) == caption for left, top, right, bottom in captions
        )


def test_encode_jpeg_gives_a_decodable_rgb_jpeg() -> None:
    data = encode_jpeg(Image.open(TREE_CAMERA).convert("L"))
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG" and decoded.mode == "RGB" and decoded.size == (320, 240)


@pytest.mark.parametrize(
    ("camera_width", "thumbnail_width"),
    [(640, 320), (704, 352), (800, 400), (1280, 320), (1920, 320), (2304, 330), (300, 300)],
)
def test_a_thumbnail_is_shrunk_by_a_whole_factor_and_reads_as_one_320_pixels_wide(
    camera_width: int, thumbnail_width: int
) -> None:
    photo = Image.open(PERSON_PHOTO).convert("RGB")
    photo = photo.resize((camera_width, round(photo.height * camera_width / photo.width)))
    person = matched("Person", PERSON_BOX)

    small = thumbnail(photo, [person], THUMBNAIL_WIDTH)

    assert small.width == thumbnail_width and small.mode == "RGB"
    factor = photo.width // THUMBNAIL_WIDTH or 1
    assert small.height == -(-photo.height // factor)  # a part block at the edge counts
    assert yellow_share_on_edges(small, PERSON_BOX) > 0.9
    # Shown 320 pixels wide, its captions are as tall as on a picture that wide.
    on_page = plan_annotation(small.size, [person], small.width / THUMBNAIL_WIDTH)
    as_wide = plan_annotation((THUMBNAIL_WIDTH, 212), [person])
    assert on_page.font_size * THUMBNAIL_WIDTH / small.width >= as_wide.font_size - 0.5
    (caption,) = on_page.captions
    assert small.getpixel((caption[0], caption[1])) == EDGE_COLOUR
