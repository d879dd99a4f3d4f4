"""The notifier interface: an alert in, an outcome out; and what a notifier is built with
besides its own settings."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class NotifierContext:
    """What a notifier is built with besides its own settings."""

    cameras: tuple[str, ...]  # every camera (a Home Assistant device each)
    sensor_labels: tuple[str, ...] = ()  # the labels with a binary sensor per camera
    dashboard_url: str | None = None  # where people open the dashboard, for links
    camera_motion: bool = False  # cameras report motion themselves (an event source runs)
    region: str | None = None  # aws_region (SES); None: the AWS environment's
    # Which of several processes sharing these settings builds it ("" when one does): a broker
    # drops a connection whose client id another one takes.
    instance: str = ""
