"""Error e-mails: at most one per failure streak per camera, and honest about whether it went out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ipcam_analysis.values import NotifyOutcome

log = logging.getLogger(__name__)

# (camera, cause, delivery) -> outcome; delivery: what worked when only channels failed.
SendError = Callable[[str, str, str | None], NotifyOutcome]
SendNotice = Callable[[str, str], NotifyOutcome]  # (subject, text) -> outcome


class ErrorStreaks(Protocol):
    """Where the reporter remembers, across restarts, which cameras already had their e-mail
    (the store's CameraHistory)."""

    def in_error_streak(self, camera: str) -> bool: ...

    def start_error_streak(self, camera: str) -> None: ...

    def end_error_streak(self, camera: str) -> None: ...


class ErrorReporter:
    """Sends at most one error e-mail per failure streak per camera."""

    def __init__(
        self,
        streaks: ErrorStreaks,
        send_error: SendError | None,
        send_notice: SendNotice | None = None,
    ) -> None:
        self._streaks = streaks
        self._send_error = send_error
        self._send_notice = send_notice

    def report(self, camera: str, cause: str, delivery: str | None = None) -> None:
        """E-mail the first failure of a streak. `delivery` (`analysed; email sent; apprise:tgram
        failed: …`) marks a picture analysed and alerted on, but not through every channel."""
        if self._send_error is None:
            return
        if self._streaks.in_error_streak(camera):
            log.info(
                "Error e-mail for %s not sent: one was already sent for this run of failures",
                camera,
            )
            return
        outcome = self._send_error(camera, cause, delivery)
        if outcome.ok:
            self._streaks.start_error_streak(camera)
            log.info("Error e-mail sent for %s", camera)
        else:
            log.error("Error e-mail for %s could not be sent: %s", camera, outcome.detail)

    def clear(self, camera: str) -> None:
        """A success ends the camera's failure streak: the next failure is news again."""
        # Read first: a write on every success would take SQLite's one writer for nothing.
        if self._streaks.in_error_streak(camera):
            self._streaks.end_error_streak(camera)

    def notice(self, text: str) -> None:
        """Something the owner should know once (a cloud budget running out): log and e-mail."""
        log.warning("%s", text)
        if self._send_notice is not None:
            outcome = self._send_notice("ipcam-analysis: " + text.split(":")[0], text)
            if not outcome.ok:
                log.error("Notice e-mail could not be sent: %s", outcome.detail)
