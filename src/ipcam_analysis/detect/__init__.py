"""Detectors, one file per kind, each holding its settings class and its implementation.

DETECTORS is the whole registry: the config's `detector:` union, the kind names and which kinds
make paid cloud calls are derived from it. Adding a detector is a new file and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field

from ipcam_analysis.detect.base import Detector, DetectorContext, DetectorError, DetectorSettings
from ipcam_analysis.detect.cascade import CascadeDetector, CascadeDetectorConfig
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig, LocalModelSettings
from ipcam_analysis.detect.rekognition import RekognitionConfig, RekognitionDetector
from ipcam_analysis.settings import Plugin


@dataclass(frozen=True)
class DetectorPlugin(Plugin[Any, DetectorContext, Detector]):
    """A detector's entry; its section is its `type` in the `detector:` section, its kind
    `paid` or `free`."""

    # Whether local.label_names() holds every label it tells apart, so that a `labels` entry
    # outside them is surely a mistake; Rekognition's labels are open-ended, so there only an
    # entry close to a known name is suspect.
    label_names_known: bool = True
    # What watching a label it cannot tell apart does, when that is more than never alerting.
    unknown_label_effect: str = ""


DETECTORS: dict[str, DetectorPlugin] = {
    "rekognition": DetectorPlugin(
        "rekognition", RekognitionConfig, RekognitionDetector.build, "paid", False
    ),
    "local": DetectorPlugin("local", LocalDetectorConfig, LocalDetector.build, "free"),
    "cascade": DetectorPlugin(
        "cascade",
        CascadeDetectorConfig,
        CascadeDetector.build,
        "paid",
        unknown_label_effect="the cascade asks Rekognition about every picture",
    ),
}

if TYPE_CHECKING:
    DetectorConfig = DetectorSettings
    DetectorKind = str
else:
    DetectorConfig = Annotated[
        Union[tuple(plugin.settings for plugin in DETECTORS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
    DetectorKind = Literal[tuple(DETECTORS)]
PAID_KINDS = frozenset(kind for kind, plugin in DETECTORS.items() if plugin.kind == "paid")


def settings_by_kind(
    configured: DetectorSettings, rekognition: RekognitionConfig, model_cache_dir: Path
) -> dict[str, DetectorSettings]:
    """Each kind's settings in force. Another kind than the configured one (a camera's own, a
    budget's local fallback, `detect --detector`) keeps what it shares with the configured one:
    the local model's settings (converted into `model_cache_dir` unless they say where), and
    Rekognition's, which are the `rekognition:` section's."""
    model = configured if isinstance(configured, LocalModelSettings) else LocalModelSettings()
    shared = model.model_dump(include=set(LocalModelSettings.model_fields))
    shared["model_cache_dir"] = model.model_cache_dir or model_cache_dir
    found: dict[str, DetectorSettings] = {}
    for kind, plugin in DETECTORS.items():
        own = configured if configured.type == kind else plugin.settings()
        assert isinstance(own, DetectorSettings)
        if isinstance(own, LocalModelSettings):
            own = own.model_copy(update=shared)
        found[kind] = own
    return {**found, "rekognition": rekognition}


def build_detector(settings: DetectorSettings, context: DetectorContext) -> Detector:
    """A new detector from its own settings; each worker thread gets its own."""
    return DETECTORS[settings.type].build(settings, context)


__all__ = [
    "DETECTORS",
    "PAID_KINDS",
    "Detector",
    "DetectorConfig",
    "DetectorContext",
    "DetectorError",
    "DetectorKind",
    "DetectorSettings",
    "build_detector",
    "settings_by_kind",
]
