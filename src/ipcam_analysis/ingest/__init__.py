"""Where uploads come in: one file per source, each "camera bytes in, Upload out".

SOURCES is the registry of upload sources, EVENT_SOURCES of those reporting camera events
(alarms) instead. A source is built from its own settings and a context (context.py): the
cameras, where self-signed certificates go, the intake it hands uploads to (handoff.UploadIntake:
its admission check before an upload, and `accept`, those received together all or none,
returning once the rows are committed) and the shared login throttle. A `listener` is configured
by its section and listens for cameras (its health: its address answers); a `poller` is
configured per camera (`cameras.<name>.<section>`) and reaches out to them (its health: each
camera's link). Adding a source is a new file and one line here.
"""

from __future__ import annotations

from typing import Any, Protocol

from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.alarm import AlarmIngest, AlarmServerConfig
from ipcam_analysis.ingest.context import (
    CameraDirectory,
    EventSourceContext,
    SourceContext,
)
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.handoff import UploadIntake
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.onvif import OnvifCameraConfig, OnvifSource
from ipcam_analysis.ingest.smtp import SmtpIngest, SmtpServerConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.settings import Plugin
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


# The listeners keep constructors of their own (their tests build them from parts); these
# build them from the contract's context. ONVIF and the alarm server take the context itself.
def _ftp(settings: FtpServerConfig, context: SourceContext) -> FtpIngest:
    return FtpIngest(
        settings, context.intake, login_throttle=context.login_throttle, tls_dir=context.tls_dir
    )


def _http(settings: HttpIngestConfig, context: SourceContext) -> HttpIngest:
    return HttpIngest(
        settings, context.cameras, context.intake, login_throttle=context.login_throttle
    )


def _smtp(settings: SmtpServerConfig, context: SourceContext) -> SmtpIngest:
    cameras, intake, throttle = context.cameras, context.intake, context.login_throttle
    return SmtpIngest(settings, cameras, intake, login_throttle=throttle, tls_dir=context.tls_dir)


SourcePlugin = Plugin[Any, SourceContext, Source | Poller]

SOURCES: dict[str, SourcePlugin] = {
    "ftp": Plugin("ftp_server", FtpServerConfig, _ftp, "listener"),
    "http": Plugin("http_ingest", HttpIngestConfig, _http, "listener"),
    "smtp": Plugin("smtp_server", SmtpServerConfig, _smtp, "listener"),
    "onvif": Plugin("onvif", OnvifCameraConfig, OnvifSource, "poller"),
}

EVENT_SOURCES: dict[str, Plugin[Any, EventSourceContext, Source]] = {
    "alarm": Plugin("alarm_server", AlarmServerConfig, AlarmIngest, "listener"),
}

__all__ = [
    "EVENT_SOURCES",
    "SOURCES",
    "CameraDirectory",
    "EventSourceContext",
    "LoginThrottle",
    "Poller",
    "Source",
    "SourceContext",
    "SourcePlugin",
    "UploadAdmission",
    "UploadIntake",
]
