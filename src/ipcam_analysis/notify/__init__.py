"""Notifiers, one file per channel; `build_notifiers` lists every one the config turns on."""

from __future__ import annotations

from ipcam_analysis.config import AppConfig
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.email import EmailNotifier, build_transport


def build_email_notifier(config: AppConfig) -> EmailNotifier | None:
    transport = build_transport(config.email, config.aws_region)
    return EmailNotifier(config.email, transport) if transport else None


def build_notifiers(config: AppConfig) -> list[Notifier]:
    """Every notifier the configuration turns on, in the order they are tried."""
    email = build_email_notifier(config)
    return [email] if email else []


__all__ = ["Notifier", "build_email_notifier", "build_notifiers"]
