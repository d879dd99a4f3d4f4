"""Amazon Rekognition DetectLabels: the cloud detector the original used."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict

from ipcam_analysis import aws
from ipcam_analysis.annotate import encode_jpeg
from ipcam_analysis.detect.base import DetectorError
from ipcam_analysis.imaging import IMAGE_WORK
from ipcam_analysis.models import Box, Detection, Instance, Label, Snapshot

if TYPE_CHECKING:
    from ipcam_analysis.config import AppConfig

# Rekognition's limits for images sent as bytes.
MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 15_000_000


class RekognitionDetectorConfig(BaseModel):
    """`detector: {type: rekognition}`; the call's settings are in the `rekognition:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["rekognition"] = "rekognition"


class RekognitionDetector:
    kind = "rekognition"

    def __init__(
        self,
        region: str | None,
        min_confidence_percent: float,
        max_labels: int,
        resize_percent: int = 100,
    ) -> None:
        self._client = aws.client("rekognition", region)
        self._min_confidence = float(min_confidence_percent)
        self._max_labels = max_labels
        self._resize_percent = resize_percent

    @classmethod
    def from_config(cls, config: AppConfig) -> RekognitionDetector:
        settings = config.rekognition
        return cls(
            config.aws_region,
            settings.min_confidence_percent,
            settings.max_labels,
            settings.image_resize_percent,
        )

    def detect(self, snapshot: Snapshot) -> Detection:
        payload = image_for_rekognition(snapshot, self._resize_percent)
        started = time.perf_counter()
        try:
            response = self._client.detect_labels(
                Image={"Bytes": payload},
                MinConfidence=self._min_confidence,
                MaxLabels=self._max_labels,
            )
        except Exception as exc:
            cause, transient = aws.describe_aws_error(exc)
            raise DetectorError(f"Rekognition: {cause}", transient=transient) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            labels = tuple(parse_label(raw) for raw in response["Labels"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DetectorError(
                f"Rekognition answered something unexpected ({exc!r})", transient=False
            ) from exc
        return Detection(self.kind, labels, elapsed_ms, cloud_calls=1)

    def close(self) -> None:
        self._client.close()


def parse_label(raw: dict[str, Any]) -> Label:
    """One entry of DetectLabels' `Labels` as our Label."""
    instances = tuple(
        Instance(
            Box(
                float(inst["BoundingBox"]["Left"]),
                float(inst["BoundingBox"]["Top"]),
                float(inst["BoundingBox"]["Width"]),
                float(inst["BoundingBox"]["Height"]),
            ),
            float(inst.get("Confidence", raw["Confidence"])),
        )
        for inst in raw.get("Instances") or ()
        if inst.get("BoundingBox")
    )
    return Label(
        name=str(raw["Name"]),
        confidence=float(raw["Confidence"]),
        parents=tuple(str(p["Name"]) for p in raw.get("Parents") or ()),
        aliases=tuple(str(a["Name"]) for a in raw.get("Aliases") or ()),
        categories=tuple(str(c["Name"]) for c in raw.get("Categories") or ()),
        instances=instances,
    )


def image_for_rekognition(snapshot: Snapshot, resize_percent: int) -> bytes:
    """The original bytes when they fit; otherwise a scaled JPEG within Rekognition's limits.

    Smaller images cost the same per call but upload faster; `image_resize_percent` asks for it.
    """
    scale = min(1.0, resize_percent / 100)
    pixels = snapshot.width * snapshot.height
    if pixels * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / pixels) ** 0.5
    if scale >= 1.0 and len(snapshot.data) <= MAX_BYTES:
        return snapshot.data
    while True:
        size = (max(80, round(snapshot.width * scale)), max(80, round(snapshot.height * scale)))
        image = snapshot.image
        if size != image.size:
            with IMAGE_WORK:
                image = image.resize(size, Image.Resampling.LANCZOS)
        data = encode_jpeg(image, quality=90)
        if len(data) <= MAX_BYTES:
            return data
        scale *= 0.8
