"""The notifier interface: an alert in, an outcome out."""

from __future__ import annotations

from typing import Protocol

from ipcam_analysis.values import Alert, NotifyOutcome


class Notifier(Protocol):
    """Tells people about one alert. Never raises for a delivery failure: it reports it."""

    name: str

    def send(self, alert: Alert) -> NotifyOutcome: ...

    def start(self) -> None:
        """Open what outlives one send (a broker connection); called once by the service."""

    def close(self) -> None: ...


class NotifierBase:
    """For notifiers with nothing to open or close."""

    def start(self) -> None:
        """Nothing outlives a send."""

    def close(self) -> None:
        """Nothing to close."""


class MailError(Exception):
    """A mail transport could not hand over a message. `transient` ones may succeed later."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient
