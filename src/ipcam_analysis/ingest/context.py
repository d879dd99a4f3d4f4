"""What a source is built with besides its own settings: who the cameras are, and the service's
intake it hands what it receives to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from ipcam_analysis.ingest.handoff import UploadIntake
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import CameraEvent


@dataclass(frozen=True)
class CameraDirectory:
    """The cameras as every source knows them (ftp_server.users are their identities) and the
    folder their uploads wait in until analysed, each camera's in a folder of its own."""

    passwords: Mapping[str, SecretStr]  # by camera name
    root_dir: Path
    # Sender address (lower case) → camera, for cameras that e-mail without logging in.
    senders: Mapping[str, str] = field(default_factory=dict)
    serial_ids: Mapping[str, str] = field(default_factory=dict)  # XMeye serial number → camera


@dataclass(frozen=True)
class SourceContext:
    """An upload source's: the cameras, where self-signed certificates are made (data_dir/tls),
    the intake it hands what it received to, and the login throttle every source shares."""

    cameras: CameraDirectory
    tls_dir: Path
    intake: UploadIntake
    login_throttle: LoginThrottle


@dataclass(frozen=True)
class EventSourceContext:
    """A camera-event source's: the cameras, and `on_camera_event`, which records one and
    returns whether it knew the camera."""

    cameras: CameraDirectory
    on_camera_event: Callable[[CameraEvent], bool]
