"""Notifiers, one file per channel, each holding its settings class and its implementation.

NOTIFIERS is the whole registry, in the order channels are tried. Adding a channel is a new
file and one line here (and, if it has a config section of its own, one field in AppConfig).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from ipcam_analysis.notify.apprise import AppriseConfig, AppriseNotifier, build_apprise_notifiers
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.email import EmailConfig, EmailNotifier
from ipcam_analysis.notify.mqtt import MqttConfig, MqttNotifier


@dataclass(frozen=True)
class NotifierPlugin:
    settings: type[BaseModel]
    # The notifiers these settings turn on: none when switched off, one per URL for Apprise.
    build: Callable[[Any], Sequence[Notifier]]
    # Whether these settings send alerts anywhere (without building anything).
    switched_on: Callable[[Any], bool]


def _email(settings: EmailConfig) -> list[Notifier]:
    notifier = EmailNotifier.from_settings(settings)
    return [notifier] if notifier else []


def _mqtt(settings: MqttConfig) -> list[Notifier]:
    return [MqttNotifier(settings)] if settings.host else []


NOTIFIERS: dict[str, NotifierPlugin] = {
    "email": NotifierPlugin(
        EmailConfig, _email, lambda s: s.transport != "none" and bool(s.recipients)
    ),
    "apprise": NotifierPlugin(AppriseConfig, build_apprise_notifiers, lambda s: bool(s.urls)),
    "mqtt": NotifierPlugin(MqttConfig, _mqtt, lambda s: bool(s.host)),
}
# Where a user switches one on, for the line saying alerts go nowhere.
HOW_TO_SWITCH_ON = "email (transport and recipients), notify (Apprise URLs) or mqtt.host"


Camera = TypeVar("Camera", str, str | None)  # None: the settings of no camera in particular


def build_notifiers(
    settings_by_camera: Mapping[Camera, Mapping[str, BaseModel]],
) -> dict[Camera, tuple[Notifier, ...]]:
    """Each camera's notifiers, in registry order, from `{camera: {kind: settings}}`.

    Cameras with the same settings for a kind share its notifiers: one MQTT connection serves
    all, and an e-mail notifier is made once per set of recipients.
    """
    made: dict[tuple[str, str], Sequence[Notifier]] = {}
    result: dict[Camera, tuple[Notifier, ...]] = {}
    for camera, by_kind in settings_by_camera.items():
        chosen: list[Notifier] = []
        for kind, plugin in NOTIFIERS.items():
            settings = by_kind[kind]
            key = (kind, settings.model_dump_json())
            if key not in made:
                made[key] = plugin.build(settings)
            chosen.extend(made[key])
        result[camera] = tuple(chosen)
    return result


def alerts_go_somewhere(settings_by_camera: Mapping[Camera, Mapping[str, BaseModel]]) -> bool:
    """Whether any camera's settings, from `{camera: {kind: settings}}`, switch a channel on."""
    return any(
        plugin.switched_on(by_kind[kind])
        for by_kind in settings_by_camera.values()
        for kind, plugin in NOTIFIERS.items()
    )


def distinct(notifiers_by_camera: Mapping[Camera, Sequence[Notifier]]) -> list[Notifier]:
    """Every notifier once, to start and close them."""
    return list({id(n): n for found in notifiers_by_camera.values() for n in found}.values())


__all__ = [
    "HOW_TO_SWITCH_ON",
    "NOTIFIERS",
    "AppriseConfig",
    "AppriseNotifier",
    "EmailConfig",
    "EmailNotifier",
    "MqttConfig",
    "MqttNotifier",
    "Notifier",
    "alerts_go_somewhere",
    "build_apprise_notifiers",
    "build_notifiers",
    "distinct",
]
