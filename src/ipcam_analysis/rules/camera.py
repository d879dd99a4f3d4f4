"""The effective settings of one camera, its overrides over the global ones: the plain value the
pipeline and the decisions read (resolved once, at load, by the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from ipcam_analysis.rules.budget import CallLimits
from ipcam_analysis.rules.filters import FiltersConfig
from ipcam_analysis.rules.windows import TimeWindow
from ipcam_analysis.values import WatchedLabels


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
