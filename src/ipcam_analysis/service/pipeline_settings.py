"""What the pipeline reads of the configuration, as plain values resolved once when the analysis
starts (service/analysis.py builds it): the pipeline never sees the whole configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ipcam_analysis.rules import BudgetConfig
from ipcam_analysis.rules.camera import CameraSettings


@dataclass(frozen=True)
class RetryPolicy:
    """How an upload that failed for a reason that may pass (a network error) is retried."""

    first_delay_seconds: float
    max_delay_seconds: float
    give_up_after_hours: float
    error_email_after_attempts: int  # the attempt that sends the error e-mail

    def delay_seconds(self, attempt: int) -> float:
        """Doubling from the first delay, up to the longest."""
        return min(self.first_delay_seconds * 2 ** (attempt - 1), self.max_delay_seconds)


@dataclass(frozen=True)
class PipelineSettings:
    """Each camera's effective settings, the cloud budget, the retry policy, and what an alert
    carries besides its labels."""

    cameras: Mapping[str, CameraSettings]  # the configured cameras
    other_cameras: CameraSettings  # the global settings, for a camera no longer configured
    budget: BudgetConfig
    retry: RetryPolicy
    sensor_labels: tuple[str, ...]  # the labels with a binary sensor (Home Assistant)
    alert_resize_percent: int  # the alert picture's size, in percent of the camera's

    def camera(self, name: str) -> CameraSettings:
        """The effective settings for uploads from this camera."""
        return self.cameras.get(name) or replace(self.other_cameras, name=name)
