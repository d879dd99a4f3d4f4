"""What every stage's settings and registries share: the strict base of settings classes, the
plugin contract every registry entry follows, and the secret text the configuration masks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Secret, ValidationInfo


class StrictModel(BaseModel):
    # A typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def config_folder(folder: Path) -> dict[str, Any]:
    """The validation context (`model_validate(data, context=...)`) of a configuration read
    from a file in `folder`."""
    return {"config_folder": folder}


def _in_config_folder(path: Path, info: ValidationInfo) -> Path:
    folder = (info.context or {}).get("config_folder")
    return path if folder is None else folder / path  # an absolute path stays as it is


# A path in the configuration: a relative one means relative to the config file's folder (left
# as it is when validated without one). A default needs Field(validate_default=True).
ConfigPath = Annotated[Path, AfterValidator(_in_config_folder)]


class SecretText(Secret[str]):
    """Text that is a secret and holds secrets (a URL with a token or a password in it): shown
    (`str()`, `--check-config`) with those masked, and each kept out of the log. The value is
    `get_secret_value()`; subclasses say which parts are secret and how it is shown."""

    def secret_parts(self) -> list[str]:
        """What the log filter masks: by default the whole text."""
        return [self.get_secret_value()]


# What sort of plugin an entry is, by registry:
# - SOURCES and EVENT_SOURCES: "listener", configured by its `<section>` and healthy when its
#   address answers; or "poller", which reaches out to each camera, so is configured per camera
#   (`cameras.<name>.<section>`), built from {camera: settings}, and healthy by each link.
# - NOTIFIERS: "per_camera", whose `cameras.<name>.<section>` replaces, for that camera, the keys
#   it writes of `<section>`; or "shared", one for every camera (one broker connection).
# - DETECTORS: "paid" (each detection may be a paid cloud call: the budget applies) or "free".
PluginKind = Literal["listener", "poller", "per_camera", "shared", "paid", "free"]

SettingsT = TypeVar("SettingsT")
ContextT = TypeVar("ContextT")
BuiltT = TypeVar("BuiltT")


@dataclass(frozen=True)
class Plugin(Generic[SettingsT, ContextT, BuiltT]):
    """A detector, source or notifier: its registry entry is all there is to wire it.

    The configuration gets a `section` of class `settings` (a detector's is the `type` of the
    `detector:` section), holding only what a user writes; the service calls
    `build(settings, context)`, where the context is a small typed value of what the rest of the
    configuration and the service give this stage (the cameras, a folder, the region), never the
    whole configuration. `kind` says where it is configured and how its health is told."""

    section: str
    settings: type[BaseModel]
    build: Callable[[SettingsT, ContextT], BuiltT]
    kind: PluginKind
