"""Detectors, one file per kind, each holding its settings class and its implementation.

DETECTORS is the whole registry: the config's `detector:` union, the kind names and which kinds
make paid cloud calls are derived from it. Adding a detector is a new file and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import BaseModel, Field

from ipcam_analysis.detect.base import Detector, DetectorError
from ipcam_analysis.detect.cascade import CascadeDetector, CascadeDetectorConfig
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.detect.rekognition import RekognitionConfig, RekognitionDetector


class DetectorFactory(Protocol):
    def from_settings(self, settings: Any, /) -> Detector: ...


@dataclass(frozen=True)
class DetectorPlugin:
    settings: type[BaseModel]  # with a `type: Literal["kind"]` field
    implementation: DetectorFactory
    paid: bool  # each detect() may be a paid cloud call: the budget applies
    # Whether local.label_names() holds every label it tells apart, so that a `labels` entry
    # outside them is surely a mistake; Rekognition's labels are open-ended, so there only an
    # entry close to a known name is suspect.
    label_names_known: bool
    # What watching a label it cannot tell apart does, when that is more than never alerting.
    unknown_label_effect: str = ""


DETECTORS: dict[str, DetectorPlugin] = {
    "rekognition": DetectorPlugin(
        RekognitionConfig, RekognitionDetector, paid=True, label_names_known=False
    ),
    "local": DetectorPlugin(LocalDetectorConfig, LocalDetector, paid=False, label_names_known=True),
    "cascade": DetectorPlugin(
        CascadeDetectorConfig,
        CascadeDetector,
        paid=True,
        label_names_known=True,
        unknown_label_effect="the cascade asks Rekognition about every picture",
    ),
}

DetectorConfig = Annotated[
    Union[tuple(plugin.settings for plugin in DETECTORS.values())],  # noqa: UP007
    Field(discriminator="type"),
]
DetectorKind = Literal[tuple(DETECTORS)]  # type: ignore[valid-type]
PAID_KINDS = frozenset(kind for kind, plugin in DETECTORS.items() if plugin.paid)


def build_detector(settings: BaseModel) -> Detector:
    """A new detector from its own settings; each worker thread gets its own."""
    return DETECTORS[settings.type].implementation.from_settings(settings)  # type: ignore[attr-defined]


__all__ = [
    "DETECTORS",
    "PAID_KINDS",
    "Detector",
    "DetectorConfig",
    "DetectorError",
    "DetectorKind",
    "build_detector",
]
