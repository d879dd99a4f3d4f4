"""Error e-mails: at most one per failure streak per camera, and honest about whether it went out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ipcam_analysis.database import Database
from ipcam_analysis.models import NotifyOutcome

log = logging.getLogger(__name__)

SendError = Callable[[str, str], NotifyOutcome]  # (camera, cause) -> outcome
SendNotice = Callable[[str, str], NotifyOutcome]  # (subject, text) -> outcome


class ErrorReporter:
    """Remembers (in the database, across restarts) which cameras already had their error e-mail."""

    def __init__(
        self,
        database: Database,
        send_error: SendError | None,
        send_notice: SendNotice | None = None,
    ) -> None:
        self._db = database
        self._send_error = send_error
        self._send_notice = send_notice

    def report(self, camera: str, cause: str) -> None:
        if self._send_error is None:
            return
        if self._db.query("SELECT 1 FROM camera_error_streaks WHERE camera = ?", (camera,)):
            log.info(
                "Error e-mail for %s not sent: one was already sent for this run of failures",
                camera,
            )
            return
        outcome = self._send_error(camera, cause)
        if outcome.ok:
            self._db.execute(
                "INSERT OR REPLACE INTO camera_error_streaks (camera, since) VALUES (?, ?)",
                (camera, time.time()),
            )
            log.info("Error e-mail sent for %s", camera)
        else:
            log.error("Error e-mail for %s could not be sent: %s", camera, outcome.detail)

    def clear(self, camera: str) -> None:
        """A success ends the camera's failure streak: the next failure is news again."""
        self._db.execute("DELETE FROM camera_error_streaks WHERE camera = ?", (camera,))

    def notice(self, text: str) -> None:
        """Something the owner should know once (a cloud budget running out): log and e-mail."""
        log.warning("%s", text)
        if self._send_notice is not None:
            outcome = self._send_notice("ipcam-analysis: " + text.split(":")[0], text)
            if not outcome.ok:
                log.error("Notice e-mail could not be sent: %s", outcome.detail)
