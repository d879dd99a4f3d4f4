"""Where box captions go so they never collide: pure geometry, computable without drawing.

Each caption is tried at spots around its box, nearest first: inside the top-left corner of a
large box, then just below or above it (aligned left, right, centred, then shifted sideways),
beside it, then stacked further away (the drawing adds a leader line to such a caption). A spot is taken when it lies in the picture and covers
no other caption, no foreign box's frame, and no box apart from its own. When some caption has
no spot left, the picture is too crowded: the caller draws a legend instead of captions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

Rect = tuple[int, int, int, int]  # left, top, right, bottom in pixels, inclusive
Size = tuple[int, int]  # width, height

STACK_LEVELS = 4  # how many caption heights away from its box a caption may be pushed
SIDEWAYS_STEPS = 3  # shifts of half a caption's width left and right of the aligned spots
INSIDE_MIN_HEIGHTS = 2.5  # a box this many captions tall takes its caption inside


def layout_captions(
    boxes: Sequence[Rect], sizes: Sequence[Size], image_size: Size, frame_width: int
) -> tuple[Rect, ...] | None:
    """One caption rectangle per box (same order), or None when they cannot all be placed.

    `frame_width` is how far a drawn frame reaches inside its box (line and dark edge): a
    caption may not cover another box's frame, even where the boxes overlap. Boxes are served
    in order, so pass the most important first.
    """
    placed: list[Rect] = []
    for index, (box, size) in enumerate(zip(boxes, sizes, strict=True)):
        obstacles = [*placed, *_foreign_parts(boxes, index, frame_width)]
        # Nearest first; a stable sort keeps below before above, aligned before shifted.
        candidates = sorted(
            _candidates(box, size, image_size, frame_width),
            key=lambda candidate: -1 if candidate[1] else _gap(box, candidate[0]),
        )
        spot = next(
            (
                rect
                for rect, inside in candidates
                if not any(overlaps(rect, other) for other in obstacles)
                and (inside or not overlaps(rect, _grown(box, 1)))
            ),
            None,
        )
        if spot is None:
            return None
        placed.append(spot)
    return tuple(placed)


def leader_line(box: Rect, caption: Rect) -> tuple[int, int, int, int] | None:
    """A line from a caption to its box when the caption was pushed away from it (x0, y0, x1,
    y1: nearest points of the two), None when it touches its box or sits inside it."""
    caption_x, box_x = _nearest(caption[0], caption[2], box[0], box[2])
    caption_y, box_y = _nearest(caption[1], caption[3], box[1], box[3])
    if abs(caption_x - box_x) <= 2 and abs(caption_y - box_y) <= 2:
        return None
    return caption_x, caption_y, box_x, box_y


def _gap(box: Rect, caption: Rect) -> int:
    """How far a caption is from its box, squared (0 when touching): the sort key of spots."""
    across = max(box[0] - caption[2], caption[0] - box[2], 0)
    down = max(box[1] - caption[3], caption[1] - box[3], 0)
    return across * across + down * down


def _nearest(low: int, high: int, other_low: int, other_high: int) -> tuple[int, int]:
    """On one axis, the closest points of two spans (equal where they overlap)."""
    if high < other_low:
        return high, other_low
    if other_high < low:
        return low, other_high
    middle = (max(low, other_low) + min(high, other_high)) // 2
    return middle, middle


def overlaps(first: Rect, second: Rect) -> bool:
    """Whether two inclusive rectangles share a pixel."""
    return not (
        first[2] < second[0] or second[2] < first[0] or first[3] < second[1] or second[3] < first[1]
    )


def frame_strips(box: Rect, frame_width: int) -> tuple[Rect, ...]:
    """The four bands a drawn frame covers: from its dark outer edge to `frame_width` inside."""
    left, top, right, bottom = _grown(box, 1)
    reach = frame_width + 1
    # A box thinner than two frames is all frame: no band reaches past its other side.
    return (
        (left, top, right, min(top + reach, bottom)),
        (left, max(bottom - reach, top), right, bottom),
        (left, top, min(left + reach, right), bottom),
        (max(right - reach, left), top, right, bottom),
    )


def _foreign_parts(boxes: Sequence[Rect], index: int, frame_width: int) -> Iterator[Rect]:
    """What caption `index` must not cover: other boxes whole, or only their frames where they
    overlap its own box (a person in front of a van is captioned over the van, not its lines)."""
    own = boxes[index]
    for other_index, other in enumerate(boxes):
        if other_index == index:
            continue
        if overlaps(other, own):
            yield from frame_strips(other, frame_width)
        else:
            yield _grown(other, 1)


def _candidates(
    box: Rect, size: Size, image_size: Size, frame_width: int
) -> Iterator[tuple[Rect, bool]]:
    """Spots for a caption, best first, each inside the picture; True for the inside one."""
    left, top, right, bottom = box
    width, height = size
    if right - left + 1 >= width + 2 * (frame_width + 1) and (
        bottom - top + 1 >= INSIDE_MIN_HEIGHTS * height
    ):
        yield _at(left + frame_width + 1, top + frame_width + 1, size), True
    image_width, image_height = image_size
    if width > image_width or height > image_height:
        return
    aligned = [left - 1, right + 1 - width + 1, (left + right - width) // 2]
    shifted = [
        x + direction * step * (width // 2)
        for step in range(1, SIDEWAYS_STEPS + 1)
        for x in aligned[:2]
        for direction in (-1, 1)
    ]
    xs = list(dict.fromkeys(_clamp(x, 0, image_width - width) for x in [*aligned, *shifted]))
    beside = [top - 1, bottom + 1 - height + 1, (top + bottom - height) // 2]
    for level in range(STACK_LEVELS + 1):
        below = bottom + 2 + level * (height + 1)
        above = top - 1 - height - level * (height + 1)
        for y in (below, above):
            if 0 <= y <= image_height - height:
                for x in xs:
                    yield _at(x, y, size), False
        if level == 0:
            for x in (right + 2, left - 1 - width):
                if 0 <= x <= image_width - width:
                    for y in beside:
                        yield _at(x, _clamp(y, 0, image_height - height), size), False


def _at(x: int, y: int, size: Size) -> Rect:
    return x, y, x + size[0] - 1, y + size[1] - 1


def _grown(rect: Rect, by: int) -> Rect:
    return rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by


def _clamp(value: int, lowest: int, highest: int) -> int:
    return max(lowest, min(value, highest))
