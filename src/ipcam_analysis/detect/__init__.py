"""Detectors, one file per kind; this dict is the whole registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ipcam_analysis.detect.base import Detector, DetectorError
from ipcam_analysis.detect.cascade import CascadeDetector, CascadeDetectorConfig
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.detect.rekognition import RekognitionDetector, RekognitionDetectorConfig

if TYPE_CHECKING:
    from ipcam_analysis.config import AppConfig

DetectorConfig = Annotated[
    RekognitionDetectorConfig | LocalDetectorConfig | CascadeDetectorConfig,
    Field(discriminator="type"),
]

DETECTORS = {
    "rekognition": RekognitionDetector,
    "local": LocalDetector,
    "cascade": CascadeDetector,
}


def build_detector(config: AppConfig, kind: str | None = None) -> Detector:
    """A new detector of the configured (or given) kind; each worker thread gets its own."""
    detector_class = DETECTORS[kind or config.detector.type]
    return detector_class.from_config(config)


__all__ = ["DETECTORS", "Detector", "DetectorConfig", "DetectorError", "build_detector"]
