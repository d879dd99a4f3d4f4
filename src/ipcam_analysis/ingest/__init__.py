"""Where uploads come in: one file per source, each "camera bytes in, Upload out".

SOURCES is the whole registry. A source is built from its own settings, the function that
queues an upload (it returns only once the queue row is committed), the shared admission check
(back-pressure, free space) and login throttle. Adding a source is a new file and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import Upload


class Source(Protocol):
    """A listener cameras send to."""

    @property
    def address(self) -> tuple[str, int]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SourceFactory(Protocol):
    def __call__(
        self,
        settings: BaseModel,
        on_upload: Callable[[Upload], int],
        *,
        login_throttle: LoginThrottle,
        admission: UploadAdmission,
    ) -> Source: ...


@dataclass(frozen=True)
class SourcePlugin:
    settings: type[BaseModel]
    implementation: SourceFactory


SOURCES: dict[str, SourcePlugin] = {
    "ftp": SourcePlugin(FtpServerConfig, FtpIngest),  # type: ignore[arg-type]
    "http": SourcePlugin(HttpIngestConfig, HttpIngest),  # type: ignore[arg-type]
}

__all__ = ["SOURCES", "LoginThrottle", "Source", "SourcePlugin", "UploadAdmission"]
