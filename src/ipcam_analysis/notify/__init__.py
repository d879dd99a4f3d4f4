"""Notifiers, one file per channel, each holding its settings class and its implementation.

NOTIFIERS is the whole registry, in the order channels are tried: each entry's section appears
in the configuration (and, for a `per_camera` one, in each camera's), its secrets are masked,
and it is built for the cameras that use it. Adding a channel is a new file and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from ipcam_analysis.notify.apprise import AppriseConfig, AppriseNotifier, build_apprise_notifiers
from ipcam_analysis.notify.base import Notifier, NotifierContext
from ipcam_analysis.notify.email import EmailConfig, EmailNotifier, build_email_notifiers
from ipcam_analysis.notify.mqtt import MqttConfig, MqttNotifier, build_mqtt_notifiers
from ipcam_analysis.notify.webhook import WebhookConfig, build_webhook_notifiers
from ipcam_analysis.settings import Plugin

# The notifiers a channel's settings turn on: none when switched off, one per URL for Apprise.
NotifierPlugin = Plugin[Any, NotifierContext, Sequence[Notifier]]

NOTIFIERS: dict[str, NotifierPlugin] = {
    "email": Plugin("email", EmailConfig, build_email_notifiers, "per_camera"),
    "apprise": Plugin("notify", AppriseConfig, build_apprise_notifiers, "per_camera"),
    "mqtt": Plugin("mqtt", MqttConfig, build_mqtt_notifiers, "shared"),
    "webhook": Plugin("webhook", WebhookConfig, build_webhook_notifiers, "per_camera"),
}
# Where a user switches one on, for the line saying alerts go nowhere.
HOW_TO_SWITCH_ON = ", ".join(plugin.section for plugin in NOTIFIERS.values())


Camera = TypeVar("Camera", str, str | None)  # None: the settings of no camera in particular


def build_notifiers(
    settings_by_camera: Mapping[Camera, Mapping[str, BaseModel]], context: NotifierContext
) -> dict[Camera, tuple[Notifier, ...]]:
    """Each camera's notifiers, in registry order, from `{camera: {kind: settings}}`.

    Cameras with the same settings for a kind share its notifiers: one MQTT connection serves
    all, and an e-mail notifier is made once per set of recipients.
    """
    made: list[tuple[BaseModel, Sequence[Notifier]]] = []
    result: dict[Camera, tuple[Notifier, ...]] = {}
    for camera, by_kind in settings_by_camera.items():
        chosen: list[Notifier] = []
        for kind, plugin in NOTIFIERS.items():
            settings = by_kind[kind]
            # Compared whole (secrets by their values): settings are not hashable.
            built = next((notifiers for seen, notifiers in made if seen == settings), None)
            if built is None:
                built = plugin.build(settings, context)
                made.append((settings, built))
            chosen.extend(built)
        result[camera] = tuple(chosen)
    return result


def alerts_go_somewhere(settings_by_camera: Mapping[Camera, Mapping[str, Any]]) -> bool:
    """Whether any camera's settings, from `{camera: {kind: settings}}`, switch a channel on
    (each notifier's settings class has `switched_on`, true when they send alerts somewhere)."""
    return any(
        settings.switched_on
        for by_kind in settings_by_camera.values()
        for settings in by_kind.values()
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
    "NotifierContext",
    "alerts_go_somewhere",
    "build_apprise_notifiers",
    "build_notifiers",
    "distinct",
]
