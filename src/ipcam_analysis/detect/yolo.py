"""YOLOv3-tiny or YOLOv4-tiny on onnxruntime: RGB pixels in, COCO classes and boxes out.

Apart from `local.py` (the detector and its settings) because numpy, OpenCV and onnxruntime are
heavy: the config imports `local.py`, and a service without the local detector never imports
this file.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from ipcam_analysis.detect import darknet

if TYPE_CHECKING:
    from ipcam_analysis.detect.local import LocalModelSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sighting:
    """One box: its COCO class number, score (0..1) and corners relative to the image (0..1)."""

    class_id: int
    score: float
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class _Found:
    """Boxes found, one row each: corners (left, top, right, bottom, relative), class, score."""

    corners: np.ndarray  # shape (n, 4)
    class_ids: np.ndarray  # shape (n,)
    scores: np.ndarray  # shape (n,), 0..1

    @classmethod
    def joined(cls, parts: list[_Found]) -> _Found:
        return cls(
            np.concatenate([p.corners for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
            np.concatenate([p.scores for p in parts]),
        )


class YoloTiny:
    """One worker's handle on the network; the model itself is loaded once per process."""

    def __init__(
        self,
        cfg: Path,
        weights_file: Path,
        model_key: str,
        settings: LocalModelSettings,
        thresholds: tuple[float, float],
        cache_folder: Path | None = None,
    ) -> None:
        self._model = _model_for(cfg, weights_file, model_key, settings.threads, cache_folder)
        self._heads = darknet.yolo_heads(cfg)
        self._settings = settings
        # 0..1, for colour and for greyscale pictures: a night threshold may be lower.
        self._day_threshold, self._night_threshold = thresholds
        cv2.setNumThreads(settings.threads)

    def find(self, image: Image.Image, *, night: bool) -> list[Sighting]:
        """Boxes above the threshold in an RGB image, after non-maximum suppression.

        A greyscale (night IR) picture gets the night settings; a large one is also cut into
        overlapping tiles, so that a far-away person or a bird at the feeder keeps enough pixels.
        """
        pixels = np.asarray(image)
        threshold = self._night_threshold if night else self._day_threshold
        sizes = self._settings.sizes_for(night=night)
        passes = [self._run(pixels, size, threshold) for size in sizes]
        passes += [
            self._run_tile(pixels, tile, sizes[0], threshold) for tile in self._tiles(*image.size)
        ]
        found = self._suppressed(_Found.joined(passes), *image.size, threshold)
        return [
            Sighting(int(class_id), float(score), *(float(edge) for edge in corners))
            for corners, class_id, score in zip(
                found.corners, found.class_ids, found.scores, strict=True
            )
        ]

    def _tiles(self, width: int, height: int) -> list[Tile]:
        settings = self._settings
        if settings.tiles == "off" or max(width, height) < settings.tile_min_side:
            return []
        return tile_grid(width, height, settings.tile_side, TILE_OVERLAP)

    def _run_tile(self, pixels: np.ndarray, tile: Tile, size: int, threshold: float) -> _Found:
        """One pass on a tile, boxes relative to the whole image; boxes cut by an inner tile edge
        are dropped: the object is whole in the neighbouring tile or in the whole-image pass."""
        height, width = pixels.shape[:2]
        found = self._run(
            np.ascontiguousarray(pixels[tile.top : tile.bottom, tile.left : tile.right]),
            size,
            threshold,
        )
        sure_enough = found.scores >= threshold + self._settings.tile_margin_percent / 100
        keep = sure_enough & ~_touches_inner_edge(found.corners, tile, width, height)
        scale = np.array([tile.right - tile.left, tile.bottom - tile.top] * 2, np.float32)
        offset = np.array([tile.left, tile.top] * 2, np.float32)
        corners = (found.corners[keep] * scale + offset) / [width, height, width, height]
        return _Found(corners, found.class_ids[keep], found.scores[keep])

    def _run(self, pixels: np.ndarray, size: int, threshold: float) -> _Found:
        """One pass at one network size, boxes relative to the whole image."""
        height, width = pixels.shape[:2]
        ratio = min(size / width, size / height)
        inner_w, inner_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        # Letterbox like Darknet: scale without distortion, pad with mid-grey.
        canvas = np.full((size, size, 3), 127, np.uint8)
        left, top = (size - inner_w) // 2, (size - inner_h) // 2
        shrink = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
        canvas[top : top + inner_h, left : left + inner_w] = cv2.resize(
            pixels, (inner_w, inner_h), interpolation=shrink
        )
        blob = (canvas.transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)
        with self._model.turn:
            outputs = self._model.session.run([h.output for h in self._heads], {"image": blob})
        parts = [
            decode(out, head, size, threshold)
            for out, head in zip(outputs, self._heads, strict=True)
        ]
        found = _Found.joined(parts)
        # From letterboxed network pixels to 0..1 of the original image.
        offset, scale = [left, top, left, top], [inner_w, inner_h, inner_w, inner_h]
        corners = np.clip((found.corners * size - offset) / scale, 0, 1)
        return _Found(corners, found.class_ids, found.scores)

    def _suppressed(self, found: _Found, width: int, height: int, threshold: float) -> _Found:
        """Class-aware non-maximum suppression over both passes, in pixels for true aspect."""
        if not len(found.scores):
            return found
        pixels = found.corners * [width, height, width, height]
        xywh = np.column_stack([pixels[:, :2], pixels[:, 2:] - pixels[:, :2]])
        kept = cv2.dnn.NMSBoxesBatched(
            xywh.tolist(),
            found.scores.tolist(),
            found.class_ids.tolist(),
            threshold,
            self._settings.nms_threshold,
        )
        keep = np.asarray(kept, int).reshape(-1)
        return _Found(found.corners[keep], found.class_ids[keep], found.scores[keep])


def decode(output: np.ndarray, head: darknet.YoloHead, size: int, threshold: float) -> _Found:
    """A [yolo] head's output grid to boxes (relative to the network input) above the threshold."""
    _, _, rows, cols = output.shape
    grid = output.reshape(len(head.anchors), 5 + head.classes, rows, cols)
    objectness = _sigmoid(grid[:, 4])
    # A class score is objectness × class probability, so weak cells can be skipped early.
    anchor, row, col = np.nonzero(objectness >= threshold)
    cells = grid[anchor, :, row, col]  # (n, 5 + classes)
    scores = _sigmoid(cells[:, 5:]) * objectness[anchor, row, col][:, None]
    box_index, class_ids = np.nonzero(scores >= threshold)
    cells, anchor = cells[box_index], anchor[box_index]
    anchors = np.asarray(head.anchors, np.float32)[anchor]
    stretch, shift = head.scale_x_y, (head.scale_x_y - 1) / 2
    centre_x = (_sigmoid(cells[:, 0]) * stretch - shift + col[box_index]) / cols
    centre_y = (_sigmoid(cells[:, 1]) * stretch - shift + row[box_index]) / rows
    half_w = np.exp(cells[:, 2]) * anchors[:, 0] / size / 2
    half_h = np.exp(cells[:, 3]) * anchors[:, 1] / size / 2
    corners = np.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1
    )
    return _Found(corners, class_ids, scores[box_index, class_ids])


@dataclass(frozen=True)
class Tile:
    """A rectangle of the image in pixels (right and bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int


# Neighbouring tiles share a fifth of their side: an object up to that size lies whole in one.
TILE_OVERLAP = 0.2
# A box edge this close (relative to the tile) to an inner tile edge counts as cut by it.
_EDGE_MARGIN = 0.01


def tile_grid(width: int, height: int, side: int, overlap: float) -> list[Tile]:
    """Overlapping tiles of about `side` pixels covering the image, evenly spread."""

    def starts(length: int) -> list[tuple[int, int]]:
        span = min(side, length)
        count = max(1, int(np.ceil((length - span * overlap) / (span * (1 - overlap)))))
        step = (length - span) / (count - 1) if count > 1 else 0
        return [(round(i * step), round(i * step) + span) for i in range(count)]

    return [
        Tile(left, top, right, bottom)
        for top, bottom in starts(height)
        for left, right in starts(width)
    ]


def _touches_inner_edge(corners: np.ndarray, tile: Tile, width: int, height: int) -> np.ndarray:
    """Which boxes (relative to the tile) touch a tile edge that is not an image edge."""
    inner = np.array([tile.left > 0, tile.top > 0, tile.right < width, tile.bottom < height])
    near = np.column_stack([corners[:, :2] <= _EDGE_MARGIN, corners[:, 2:] >= 1 - _EDGE_MARGIN])
    return (near & inner).any(axis=1)


# R, G and B of a greyscale JPEG differ by a few levels at most (chroma rounding); a colour
# picture, even a dull one, has at least 1 % of its pixels further apart than this.
_GREY_SPREAD = 6


def is_night(image: Image.Image) -> bool:
    """Whether an RGB picture is a night (IR) one: greyscale."""
    return is_greyscale(np.asarray(image))


def is_greyscale(pixels: np.ndarray) -> bool:
    """A night (IR) picture: the three channels equal, give or take JPEG's rounding."""
    sample = pixels[:: max(1, pixels.shape[0] // 64), :: max(1, pixels.shape[1] // 64)]
    sample = sample.astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    return bool(np.percentile(spread, 99) <= _GREY_SPREAD)


@dataclass(frozen=True)
class _SharedModel:
    """One onnxruntime session per model and thread count in the process, run one image at a time.

    A session holds ~85 MB and each concurrent run ~30 MB more, while `threads` already keep the
    cores busy: the workers' detectors share it and take turns (8 workers: 300 MB, not 480 MB).
    """

    session: Any
    turn: threading.Lock


def _model_for(
    cfg: Path, weights_file: Path, key: str, threads: int, cache: Path | None
) -> _SharedModel:
    """The shared model on the converted file; a damaged cache file is converted again."""
    model = darknet.cached_model(cfg, weights_file, key, cache)
    try:
        return _shared_model(model, threads)
    except Exception:  # onnxruntime's own error types, e.g. for a truncated file
        if not isinstance(model, str):
            raise
        log.warning("The cached model %s cannot be loaded; converting it again", model)
        Path(model).unlink(missing_ok=True)
    return _shared_model(darknet.cached_model(cfg, weights_file, key, cache), threads)


@functools.cache
def _shared_model(model: str | bytes, threads: int) -> _SharedModel:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return _SharedModel(session, threading.Lock())


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-values))
