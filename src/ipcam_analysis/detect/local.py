"""The local detector: YOLOv3-tiny or YOLOv4-tiny (COCO, 80 classes) on the CPU, no cloud."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from ipcam_analysis.detect import weights
from ipcam_analysis.detect.base import DetectorContext, DetectorSettings
from ipcam_analysis.detect.one_box import one_box_per_object
from ipcam_analysis.detect.thresholds import LabelThresholds, PercentByLabel, named_thresholds
from ipcam_analysis.settings import ConfigPath, StrictModel
from ipcam_analysis.values import Box, Detection, Instance, Label, Snapshot, WatchedLabels

if TYPE_CHECKING:
    from ipcam_analysis.detect.yolo import Sighting

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


def _rekognition_style(coco_names: Path) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Each class of the model's names file, in order, as (name, parents, aliases)."""
    names = [n for n in coco_names.read_text(encoding="utf-8").splitlines() if n.strip()]
    return [REKOGNITION_STYLE.get(n, (n.title(), (), ())) for n in names]


@functools.cache
def label_names() -> frozenset[str]:
    """Every name, parent and alias the local detector answers, as it writes them; without
    the model files (a Rekognition-only install), those of the classes renamed above."""
    try:
        names_file = weights.MODELS[LocalModelSettings().model].files[2]
        labels = _rekognition_style(weights.verified_in(None, names_file))
    except weights.ModelFilesError:
        labels = list(REKOGNITION_STYLE.values())
    return frozenset(
        word for name, parents, aliases in labels for word in (name, *parents, *aliases)
    )


class LocalModelSettings(StrictModel):
    """Which network runs, and how; shared by `local` and `cascade`."""

    model: Literal["yolov3-tiny", "yolov4-tiny"] = "yolov3-tiny"

    # 416 is the network's native size; a second pass at 320 finds what fills the frame
    # (close portraits, a car's rear) that YOLOv3-tiny's largest anchors miss at 416.
    input_sizes: tuple[int, ...] = Field((416, 320), min_length=1)
    # Greyscale (night IR) pictures: the sizes run on them instead, when set.
    night_input_sizes: tuple[int, ...] | None = Field(None, min_length=1)
    # A picture whose longer side is at least tile_min_side pixels is also cut into overlapping
    # tiles of about tile_side pixels, each run at the first input size: far-away objects keep
    # their pixels (8 more passes at 1920×1080). A tile sees a patch without its context and
    # names textures more often, so its boxes must score tile_margin_percent above the threshold.
    tiles: Literal["auto", "off"] = "auto"
    tile_min_side: int = Field(1280, ge=256)
    tile_side: int = Field(640, ge=128)
    tile_margin_percent: float = Field(10, ge=0, lt=100)
    nms_threshold: float = Field(0.45, gt=0, le=1)  # Darknet's default
    threads: int = Field(2, ge=1, le=64)
    # Where the model converted for onnxruntime is kept; data_dir/models when unset.
    model_cache_dir: ConfigPath | None = None

    @field_validator("input_sizes", "night_input_sizes")
    @classmethod
    def _multiples_of_32(cls, sizes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        # The network downsamples by 32; other sizes would crop the last row and column.
        if sizes and any(size % 32 or not 128 <= size <= 1024 for size in sizes):
            raise ValueError("each input size must be a multiple of 32 between 128 and 1024")
        return sizes

    def sizes_for(self, *, night: bool) -> tuple[int, ...]:
        """The network sizes to run on a colour or a greyscale (night) picture."""
        return (self.night_input_sizes or self.input_sizes) if night else self.input_sizes


class LocalDetectorConfig(LocalModelSettings, DetectorSettings):
    """`detector: {type: local}`."""

    type: Literal["local"] = "local"
    # Darknet's own default threshold.
    min_confidence_percent: float = Field(25, gt=0, le=100)
    # Greyscale (night IR) pictures: a threshold for every label or a map by label or parent
    # ({Person: 40}; the others keep min_confidence_percent). Without colour the model names
    # upright birds and statues Person more often, but true people score lower too.
    night_min_confidence_percent: PercentByLabel | None = None

    _names = field_validator("night_min_confidence_percent")(named_thresholds)

    def night_thresholds(self) -> LabelThresholds | None:
        """The thresholds greyscale pictures are held to, when they have their own."""
        if self.night_min_confidence_percent is None:
            return None
        return LabelThresholds.parse(self.night_min_confidence_percent, self.min_confidence_percent)


class LocalDetector:
    """A YOLO-tiny network on onnxruntime; one instance per worker, the model loaded once per
    process."""

    kind = "local"

    def __init__(
        self,
        settings: LocalModelSettings,
        min_confidence_percent: float,
        model_folder: Path | None = None,
        night_thresholds: LabelThresholds | None = None,
    ) -> None:
        # Imported here, not with the module: the config imports this file, and `--check-config`
        # or a Rekognition-only service should not pay for numpy, OpenCV and onnxruntime.
        from ipcam_analysis.detect.yolo import YoloTiny

        started = time.perf_counter()
        # A night threshold below the day's needs the network to report those boxes.
        night_threshold = min(
            min_confidence_percent, night_thresholds.lowest if night_thresholds else 100
        )
        model = weights.MODELS[settings.model]
        cfg, weights_file, names = (weights.verified_in(model_folder, f) for f in model.files)
        self._network = YoloTiny(
            cfg,
            weights_file,
            f"{model.name}-{model.key}",
            settings,
            (min_confidence_percent / 100, night_threshold / 100),
            settings.model_cache_dir,
        )
        self._night_thresholds = night_thresholds
        self._labels = _rekognition_style(names)
        self._label_of = {label[0]: label for label in self._labels}
        self._same_box_iou = settings.nms_threshold
        log.debug("Local detector ready in %.0f ms", (time.perf_counter() - started) * 1000)

    @classmethod
    def build(cls, settings: LocalDetectorConfig, context: DetectorContext) -> LocalDetector:
        return cls(
            settings, settings.min_confidence_percent, night_thresholds=settings.night_thresholds()
        )

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every name, parent and alias this detector can answer, case-folded."""
        return frozenset(
            word.casefold()
            for name, parents, aliases in self._labels
            for word in (name, *parents, *aliases)
        )

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        """Everything it sees, whatever the camera watches; a night picture held to the night
        thresholds, when set."""
        from ipcam_analysis.detect.yolo import is_night

        started = time.perf_counter()
        image = snapshot.image if snapshot.image.mode == "RGB" else snapshot.image.convert("RGB")
        night = is_night(image)
        labels = self._labels_from(self._network.find(image, night=night))
        if night and self._night_thresholds:
            labels = self._night_thresholds.passing(labels)
        return Detection(self.kind, labels, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Nothing to free: the model is shared with the other workers and lives with the process."""

    def _labels_from(self, sightings: list[Sighting]) -> tuple[Label, ...]:
        """One box per object, then one Label per class, its instances best first, labels
        ordered by their best instance."""
        named = [
            (
                self._labels[s.class_id][0],
                Instance(
                    Box(s.left, s.top, s.right - s.left, s.bottom - s.top), round(s.score * 100, 1)
                ),
            )
            for s in sightings
        ]
        by_name: dict[str, list[Instance]] = {}
        for name, instance in one_box_per_object(named, self._same_box_iou):
            by_name.setdefault(name, []).append(instance)
        labels = []
        for name, found in by_name.items():
            instances = tuple(sorted(found, key=lambda instance: -instance.confidence))
            _, parents, aliases = self._label_of[name]
            labels.append(Label(name, instances[0].confidence, parents, aliases, (), instances))
        return tuple(sorted(labels, key=lambda label: (-label.confidence, label.name)))
