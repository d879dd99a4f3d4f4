"""Where uploads come in: one file per source, each "camera bytes in, Upload out".

SOURCES is the registry of upload sources, EVENT_SOURCES of those reporting camera events
(alarms) instead. A source is built from its own settings, the intake it hands uploads to
(handoff.UploadIntake: its admission check before an upload, and `accept`, those received
together all or none, returning once the rows are committed) and the shared login throttle.
A source listens for cameras (its health: its address answers) or, a poller, reaches out to
them (its health: each camera's link). Adding a source is a new file and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.alarm import AlarmIngest, AlarmServerConfig
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.handoff import UploadIntake
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.onvif import OnvifSource, OnvifSourceConfig
from ipcam_analysis.ingest.smtp import SmtpIngest, SmtpServerConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import CameraEvent


class Source(Protocol):
    """A listener cameras send to."""

    @property
    def address(self) -> tuple[str, int]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Poller(Protocol):
    """A source that reaches out to the cameras (ONVIF subscriptions) instead of listening."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def camera_links(self) -> dict[str, dict[str, Any]]:
        """Each camera's link (state, since, error), for /healthz and the cameras page."""
        ...

    def camera_reported(self, event: CameraEvent) -> None:
        """What a camera reported through another source (its alarm), such as motion."""
        ...


class SourceFactory(Protocol):
    def __call__(
        self,
        settings: BaseModel,
        intake: UploadIntake,
        *,
        login_throttle: LoginThrottle,
    ) -> Source | Poller: ...


@dataclass(frozen=True)
class SourcePlugin:
    settings: type[BaseModel]
    implementation: SourceFactory
    health: Literal["listener", "poller"] = "listener"


SOURCES: dict[str, SourcePlugin] = {
    "ftp": SourcePlugin(FtpServerConfig, FtpIngest),  # type: ignore[arg-type]
    "http": SourcePlugin(HttpIngestConfig, HttpIngest),  # type: ignore[arg-type]
    "smtp": SourcePlugin(SmtpServerConfig, SmtpIngest),  # type: ignore[arg-type]
    "onvif": SourcePlugin(OnvifSourceConfig, OnvifSource, "poller"),  # type: ignore[arg-type]
}


class EventSourceFactory(Protocol):
    """A source of what cameras report themselves rather than pictures: `on_camera_event`
    records one and returns whether it knew the camera."""

    def __call__(
        self, settings: BaseModel, on_camera_event: Callable[[CameraEvent], bool]
    ) -> Source: ...


@dataclass(frozen=True)
class EventSourcePlugin:
    settings: type[BaseModel]
    implementation: EventSourceFactory


EVENT_SOURCES: dict[str, EventSourcePlugin] = {
    "alarm": EventSourcePlugin(AlarmServerConfig, AlarmIngest),  # type: ignore[arg-type]
}

__all__ = [
    "EVENT_SOURCES",
    "SOURCES",
    "EventSourcePlugin",
    "LoginThrottle",
    "Poller",
    "Source",
    "SourcePlugin",
    "UploadAdmission",
    "UploadIntake",
]
