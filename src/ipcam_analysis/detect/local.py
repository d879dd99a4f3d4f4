"""The local detector: YOLOv3-tiny (COCO, 80 classes) on the CPU, no cloud and no download."""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ipcam_analysis.detect import darknet, weights
from ipcam_analysis.models import Box, Detection, Instance, Label, Snapshot

if TYPE_CHECKING:
    from ipcam_analysis.config import AppConfig

log = logging.getLogger(__name__)

_ROAD = ("Vehicle", "Transportation")
_PET = ("Animal", "Pet", "Mammal")
_WILD = ("Animal", "Mammal", "Wildlife")
_FARM = ("Animal", "Mammal", "Livestock")

# COCO names as Rekognition would answer them, so `labels: [Person, Vehicle, Animal]` means the
# same with either detector: Darknet spellings fixed, Rekognition's names, parents and aliases.
# Only road vehicles are a Vehicle: a camera's "Vehicle" means cars, not moored boats or trains.
# Classes not listed keep their COCO name, capitalised, with no parents.
REKOGNITION_STYLE: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "person": ("Person", (), ("Human",)),
    "bicycle": ("Bicycle", _ROAD, ("Bike",)),
    "car": ("Car", _ROAD, ("Automobile",)),
    "motorbike": ("Motorcycle", _ROAD, ("Motorbike",)),
    "aeroplane": ("Airplane", ("Aircraft", "Transportation"), ("Aeroplane",)),
    "bus": ("Bus", _ROAD, ()),
    "train": ("Train", ("Transportation",), ()),
    "truck": ("Truck", _ROAD, ()),
    "boat": ("Boat", ("Watercraft", "Transportation"), ()),
    "bird": ("Bird", ("Animal",), ()),
    "cat": ("Cat", _PET, ()),
    "dog": ("Dog", (*_PET[:2], "Canine", "Mammal"), ()),
    "horse": ("Horse", _FARM, ()),
    "sheep": ("Sheep", _FARM, ()),
    "cow": ("Cow", ("Cattle", *_FARM), ()),
    "elephant": ("Elephant", _WILD, ()),
    "bear": ("Bear", _WILD, ()),
    "zebra": ("Zebra", _WILD, ()),
    "giraffe": ("Giraffe", _WILD, ()),
    "sofa": ("Couch", ("Furniture",), ("Sofa",)),
    "pottedplant": ("Potted Plant", ("Plant",), ()),
    "diningtable": ("Dining Table", ("Table", "Furniture"), ()),
    "tvmonitor": ("Monitor", ("Electronics",), ("TV",)),
}


class LocalModelSettings(BaseModel):
    """How YOLOv3-tiny runs; shared by `local` and `cascade`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # 416 is the network's native size; a second pass at 320 finds what fills the frame
    # (close portraits, a car's rear) that YOLOv3-tiny's largest anchors miss at 416.
    input_sizes: tuple[int, ...] = Field((416, 320), min_length=1)
    nms_threshold: float = Field(0.45, gt=0, le=1)  # Darknet's default
    threads: int = Field(2, ge=1, le=64)

    @field_validator("input_sizes")
    @classmethod
    def _multiples_of_32(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        # The network downsamples by 32; other sizes would crop the last row and column.
        if any(size % 32 or not 128 <= size <= 1024 for size in sizes):
            raise ValueError("each input size must be a multiple of 32 between 128 and 1024")
        return sizes


class LocalDetectorConfig(LocalModelSettings):
    """`detector: {type: local}`."""

    type: Literal["local"] = "local"
    # Darknet's own default threshold.
    min_confidence_percent: float = Field(25, gt=0, le=100)


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


class LocalDetector:
    """YOLOv3-tiny with onnxruntime; one instance per worker, the model loaded once per process."""

    kind = "local"

    def __init__(
        self,
        settings: LocalModelSettings,
        min_confidence_percent: float,
        model_folder: Path | None = None,
        cache_folder: Path | None = None,
    ) -> None:
        # Imported here, not with the module: the config imports this file, and `--check-config`
        # or a Rekognition-only service should not pay for OpenCV.
        import cv2

        started = time.perf_counter()
        cfg, weights_file, names = (
            weights.verified_in(model_folder, f) for f in weights.YOLO_FILES
        )
        self._model = _model_for(cfg, weights_file, settings.threads, cache_folder)
        self._heads = darknet.yolo_heads(cfg)
        coco_names = [n for n in names.read_text(encoding="utf-8").splitlines() if n.strip()]
        self._labels = [REKOGNITION_STYLE.get(n, (n.title(), (), ())) for n in coco_names]
        self._settings = settings
        self._threshold = min_confidence_percent / 100
        self._cv2: Any = cv2
        cv2.setNumThreads(settings.threads)
        log.debug("Local detector ready in %.0f ms", (time.perf_counter() - started) * 1000)

    @classmethod
    def from_config(cls, config: AppConfig) -> LocalDetector:
        settings = config.detector
        cache = model_cache_folder(config)
        if isinstance(settings, LocalDetectorConfig):
            return cls(settings, settings.min_confidence_percent, cache_folder=cache)
        # `detect --detector local` with another kind configured: a cascade's model settings
        # if that is what is configured, and the local detector's own threshold.
        defaults = LocalDetectorConfig()
        model = settings if isinstance(settings, LocalModelSettings) else defaults
        return cls(model, defaults.min_confidence_percent, cache_folder=cache)

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every name, parent and alias this detector can answer, case-folded."""
        return frozenset(
            word.casefold()
            for name, parents, aliases in self._labels
            for word in (name, *parents, *aliases)
        )

    def detect(self, snapshot: Snapshot) -> Detection:
        started = time.perf_counter()
        image = snapshot.image if snapshot.image.mode == "RGB" else snapshot.image.convert("RGB")
        pixels = np.asarray(image)
        passes = [self._run(pixels, size) for size in self._settings.input_sizes]
        labels = self._labels_from(self._suppressed(_Found.joined(passes), *image.size))
        return Detection(self.kind, labels, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Nothing to free: the model is shared with the other workers and lives with the process."""

    def _run(self, pixels: np.ndarray, size: int) -> _Found:
        """One pass at one network size, boxes relative to the whole image."""
        height, width = pixels.shape[:2]
        ratio = min(size / width, size / height)
        inner_w, inner_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        # Letterbox like Darknet: scale without distortion, pad with mid-grey.
        canvas = np.full((size, size, 3), 127, np.uint8)
        left, top = (size - inner_w) // 2, (size - inner_h) // 2
        shrink = self._cv2.INTER_AREA if ratio < 1 else self._cv2.INTER_LINEAR
        canvas[top : top + inner_h, left : left + inner_w] = self._cv2.resize(
            pixels, (inner_w, inner_h), interpolation=shrink
        )
        blob = (canvas.transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)
        with self._model.turn:
            outputs = self._model.session.run([h.output for h in self._heads], {"image": blob})
        parts = [
            self._decode(out, head, size) for out, head in zip(outputs, self._heads, strict=True)
        ]
        found = _Found.joined(parts)
        # From letterboxed network pixels to 0..1 of the original image.
        offset, scale = [left, top, left, top], [inner_w, inner_h, inner_w, inner_h]
        corners = np.clip((found.corners * size - offset) / scale, 0, 1)
        return _Found(corners, found.class_ids, found.scores)

    def _decode(self, output: np.ndarray, head: darknet.YoloHead, size: int) -> _Found:
        """YOLOv3's output grid to boxes (relative to the network input) above the threshold."""
        _, _, rows, cols = output.shape
        grid = output.reshape(len(head.anchors), 5 + head.classes, rows, cols)
        objectness = _sigmoid(grid[:, 4])
        # A class score is objectness × class probability, so weak cells can be skipped early.
        anchor, row, col = np.nonzero(objectness >= self._threshold)
        cells = grid[anchor, :, row, col]  # (n, 5 + classes)
        scores = _sigmoid(cells[:, 5:]) * objectness[anchor, row, col][:, None]
        box_index, class_ids = np.nonzero(scores >= self._threshold)
        cells, anchor = cells[box_index], anchor[box_index]
        anchors = np.asarray(head.anchors, np.float32)[anchor]
        centre_x = (_sigmoid(cells[:, 0]) + col[box_index]) / cols
        centre_y = (_sigmoid(cells[:, 1]) + row[box_index]) / rows
        half_w = np.exp(cells[:, 2]) * anchors[:, 0] / size / 2
        half_h = np.exp(cells[:, 3]) * anchors[:, 1] / size / 2
        corners = np.stack(
            [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1
        )
        return _Found(corners, class_ids, scores[box_index, class_ids])

    def _suppressed(self, found: _Found, width: int, height: int) -> _Found:
        """Class-aware non-maximum suppression over both passes, in pixels for true aspect."""
        if not len(found.scores):
            return found
        pixels = found.corners * [width, height, width, height]
        xywh = np.column_stack([pixels[:, :2], pixels[:, 2:] - pixels[:, :2]])
        keep = self._cv2.dnn.NMSBoxesBatched(
            xywh.tolist(),
            found.scores.tolist(),
            found.class_ids.tolist(),
            self._threshold,
            self._settings.nms_threshold,
        )
        keep = np.asarray(keep, int).reshape(-1)
        return _Found(found.corners[keep], found.class_ids[keep], found.scores[keep])

    def _labels_from(self, found: _Found) -> tuple[Label, ...]:
        """One Label per class, its instances best first, labels ordered by their best instance."""
        labels = []
        for class_id in np.unique(found.class_ids):
            mine = np.flatnonzero(found.class_ids == class_id)
            mine = mine[np.argsort(-found.scores[mine])]
            instances = tuple(
                Instance(
                    Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                    round(float(score) * 100, 1),
                )
                for (x0, y0, x1, y1), score in zip(
                    found.corners[mine], found.scores[mine], strict=True
                )
            )
            name, parents, aliases = self._labels[class_id]
            labels.append(Label(name, instances[0].confidence, parents, aliases, (), instances))
        return tuple(sorted(labels, key=lambda label: -label.confidence))


@dataclass(frozen=True)
class _SharedModel:
    """One onnxruntime session per model and thread count in the process, run one image at a time.

    A session holds ~85 MB and each concurrent run ~30 MB more, while `threads` already keep the
    cores busy: the workers' detectors share it and take turns (8 workers: 300 MB, not 480 MB).
    """

    session: Any
    turn: threading.Lock


def model_cache_folder(config: AppConfig) -> Path:
    """Where the model converted for onnxruntime is kept: in the service's own data folder."""
    return config.data_dir / "models"


def _model_for(cfg: Path, weights_file: Path, threads: int, cache: Path | None) -> _SharedModel:
    """The shared model on the converted file; a damaged cache file is converted again."""
    key = weights.YOLO_CFG.sha256[:8] + weights.YOLO_WEIGHTS.sha256[:8]
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
