"""Per-camera overrides, and the effective settings of one camera."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from ipcam_analysis.detect import DetectorKind
from ipcam_analysis.ingest.onvif import OnvifCameraConfig
from ipcam_analysis.notify.apprise import AppriseUrl
from ipcam_analysis.rules import CallLimits, FiltersConfig, TimeWindow
from ipcam_analysis.rules.windows import TimeWindows
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import WatchedLabels


class CameraConfig(StrictModel):
    """Per-camera overrides of the global settings; anything left out is inherited."""

    labels: list[str] | None = None
    new_labels_only: bool | None = None
    time_window: TimeWindows = None  # [] means around the clock
    detector: DetectorKind | None = None
    min_confidence_percent: float | None = Field(None, ge=0, le=100)
    recipients: list[str] | None = None
    notify: list[AppriseUrl] | None = None
    filters: FiltersConfig | None = None
    budget: CallLimits | None = None
    # A camera that e-mails without logging in is known by its sender address(es).
    smtp_from: list[str] | None = None
    serial_id: str | None = None  # what an XMeye camera's alarms carry as SerialID
    # A camera that announces motion (ONVIF), or whose alarm should fetch its snapshot.
    onvif: OnvifCameraConfig | None = None

    @field_validator("smtp_from", mode="before")
    @classmethod
    def _one_or_more_senders(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("smtp_from")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        for address in value or ():
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


@dataclass(frozen=True)
class CameraSettings:
    """The effective settings of one camera: its overrides over the global ones."""

    name: str
    labels: tuple[str, ...]
    new_labels_only: bool
    time_windows: tuple[TimeWindow, ...] | None
    detector: str
    min_confidence_percent: float | None
    filters: FiltersConfig
    budget: CallLimits

    @property
    def watched(self) -> WatchedLabels:
        """What this camera alerts on, as its detector is told with each picture."""
        return WatchedLabels(self.labels, self.new_labels_only)
