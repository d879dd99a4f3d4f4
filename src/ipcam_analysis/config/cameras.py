"""Per-camera overrides; each camera's effective settings (rules.camera.CameraSettings) are
resolved from them once, at load."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model, field_validator

from ipcam_analysis.detect import DetectorKind
from ipcam_analysis.ingest import SOURCES
from ipcam_analysis.notify import NOTIFIERS
from ipcam_analysis.rules import CallLimits, FiltersConfig
from ipcam_analysis.rules.windows import TimeWindows
from ipcam_analysis.settings import Plugin, StrictModel


class _CameraOverrides(StrictModel):
    labels: list[str] | None = None
    new_labels_only: bool | None = None
    time_window: TimeWindows = None  # [] means around the clock
    detector: DetectorKind | None = None
    min_confidence_percent: float | None = Field(None, ge=0, le=100)
    recipients: list[str] | None = None  # the original's way to write email.recipients


# A section per camera for each notifier a camera may have its own of (the global section's keys
# fill in what it leaves out) and each source that reaches out to cameras (ONVIF).
_PLUGINS: list[Plugin[Any, Any, Any]] = [*NOTIFIERS.values(), *SOURCES.values()]
PER_CAMERA_SECTIONS = {
    plugin.section: plugin.settings
    for plugin in _PLUGINS
    if plugin.kind in ("per_camera", "poller")
}
if TYPE_CHECKING:
    _CameraSections = _CameraOverrides
else:
    _CameraSections = create_model(
        "_CameraSections",
        __base__=_CameraOverrides,
        __module__=__name__,
        **{section: (settings | None, None) for section, settings in PER_CAMERA_SECTIONS.items()},
    )


class CameraConfig(_CameraSections):
    """Per-camera overrides of the global settings; anything left out is inherited."""

    filters: FiltersConfig | None = None
    budget: CallLimits | None = None
    # A camera that e-mails without logging in is known by its sender address(es).
    smtp_from: list[str] | None = None
    serial_id: str | None = None  # what an XMeye camera's alarms carry as SerialID

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


def with_global_sections(data: Any) -> Any:
    """The raw configuration with each camera's notifier sections completed by the global ones
    (a camera writes only what differs for it), so that they are validated, and shown, whole."""
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        return data
    shared: dict[str, dict[str, Any]] = {
        plugin.section: data[plugin.section]
        for plugin in NOTIFIERS.values()
        if plugin.kind == "per_camera" and isinstance(data.get(plugin.section), dict)
    }
    cameras = {}
    for name, camera in data["cameras"].items():
        if isinstance(camera, dict):
            camera = {
                **camera,
                **{
                    section: {**settings, **camera[section]}
                    for section, settings in shared.items()
                    if isinstance(camera.get(section), dict)
                },
            }
        cameras[name] = camera
    return {**data, "cameras": cameras}
