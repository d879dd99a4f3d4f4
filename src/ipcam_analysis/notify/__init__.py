"""Notifiers, one file per channel; `build_notifiers` lists every one the config turns on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipcam_analysis.notify.apprise import AppriseNotifier, build_apprise_notifiers
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.email import EmailNotifier, build_transport
from ipcam_analysis.notify.mqtt import MqttNotifier

if TYPE_CHECKING:
    from ipcam_analysis.config import AppConfig


def build_email_notifier(config: AppConfig) -> EmailNotifier | None:
    transport = build_transport(config.email, config.aws_region)
    return EmailNotifier(config.email, transport) if transport else None


def build_mqtt_notifier(config: AppConfig) -> MqttNotifier | None:
    """The MQTT notifier when `mqtt.host` is set; the caller starts and closes it."""
    if not config.mqtt.host:
        return None
    # In new-labels mode `labels` lists what to ignore: no sensor per label then.
    sensor_labels = [] if config.new_labels_only else config.labels
    dashboard_url = config.web.public_url if config.web.enabled else None
    return MqttNotifier(config.mqtt, list(config.ftp_server.users), sensor_labels, dashboard_url)


def build_notifiers(config: AppConfig, mqtt: MqttNotifier | None = None) -> list[Notifier]:
    """Every notifier the configuration turns on, in the order they are tried.

    `mqtt` comes from `build_mqtt_notifier`, made apart because its connection outlives a send:
    the service starts it with the other servers and closes it last.
    """
    email = build_email_notifier(config)
    return [
        *([email] if email else []),
        *build_apprise_notifiers(config.notify),
        *([mqtt] if mqtt else []),
    ]


__all__ = [
    "AppriseNotifier",
    "MqttNotifier",
    "Notifier",
    "build_apprise_notifiers",
    "build_email_notifier",
    "build_mqtt_notifier",
    "build_notifiers",
]
