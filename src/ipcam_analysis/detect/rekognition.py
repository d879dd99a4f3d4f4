"""Amazon Rekognition DetectLabels: the cloud detector the original used."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from PIL import Image
from pydantic import Field, field_validator

from ipcam_analysis import aws
from ipcam_analysis.detect.base import DetectorContext, DetectorError, DetectorSettings
from ipcam_analysis.imaging import IMAGE_WORK, encode_jpeg
from ipcam_analysis.values import Box, Detection, Instance, Label, Snapshot, WatchedLabels

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import LabelTypeDef

# Rekognition's limits for images sent as bytes.
MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 15_000_000


class RekognitionConfig(DetectorSettings):
    """The `rekognition:` section (the original's), also accepted as `detector: {type:
    rekognition, ...}`; its region is the top-level `aws_region`."""

    type: Literal["rekognition"] = "rekognition"
    max_labels: int = Field(10, ge=1, le=1000)
    min_confidence_percent: float = Field(75, ge=0, le=100)
    image_resize_percent: int = Field(100, ge=1)
    price_per_1000_images: float = Field(1.0, ge=0)  # for the cost estimate on the dashboard

    @field_validator("image_resize_percent")
    @classmethod
    def _never_enlarge(cls, value: int) -> int:
        # The original enlarged images above 100 %; a bigger picture adds nothing.
        return min(value, 100)


class RekognitionDetector:
    kind = "rekognition"

    def __init__(self, settings: RekognitionConfig, region: str | None) -> None:
        self._client = aws.client("rekognition", region)
        self._min_confidence = float(settings.min_confidence_percent)
        self._max_labels = settings.max_labels
        self._resize_percent = settings.image_resize_percent

    @classmethod
    def build(cls, settings: RekognitionConfig, context: DetectorContext) -> RekognitionDetector:
        return cls(settings, context.region)

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        """Everything it sees, whatever the camera watches."""
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


def parse_label(raw: LabelTypeDef) -> Label:
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
