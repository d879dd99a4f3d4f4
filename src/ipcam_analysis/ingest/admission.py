"""Back-pressure shared by the sources: whether one more upload may be taken (queue room, free disk)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipcam_analysis.ingest.handoff import Refusal

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Once refusing, accept again only with this much room to spare, so that an episode is one
# stretch of refusals rather than a flicker around the limit (and a log line per flicker).
RESUME_MARGIN = 0.1


@dataclass
class _Episode:
    """One stretch of refusals, for its two log lines."""

    refusal: Refusal
    started: float
    refused: int = 0


class UploadAdmission:
    """Says, before a file is transferred, whether the service can take it.

    Called before every upload (from the FTP IO thread on every STOR), so each check is cheap: `queue_depth` must be
    a cached count (UploadQueue.recent_depth) and free space is one statvfs per folder.
    """

    def __init__(
        self,
        max_queued_uploads: int,
        queue_depth: Callable[[], int],
        min_free_mb: float,
        folders: Sequence[Path],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_queued = max_queued_uploads
        self._queue_depth = queue_depth
        self._min_free_bytes = int(min_free_mb * MB)
        self._folders = tuple(dict.fromkeys(folders))
        self._clock = clock
        self._episode: _Episode | None = None

    @property
    def refusing(self) -> bool:
        return self._episode is not None

    def refusal(self) -> Refusal | None:
        """Why the upload about to start is refused, or None to take it."""
        self.update()
        if self._episode is None:
            return None
        self._episode.refused += 1
        return self._episode.refusal

    def recheck(self) -> None:
        """While refusing, look again (the end of the episode is then logged without waiting
        for the next upload)."""
        if self.refusing:
            self.update()

    def update(self) -> None:
        """Re-check the limits; logs when refusing starts and when it ends."""
        refusal, reason = self._queue_full() or self._disk_full() or (None, "")
        if refusal is not None and self._episode is None:
            log.warning("Refusing uploads: %s; cameras are told to try again later", reason)
            self._episode = _Episode(refusal, self._clock())
        elif refusal is not None and self._episode is not None:
            self._episode.refusal = refusal  # the queue drained but the disk filled, or the reverse
        elif self._episode is not None:
            episode, self._episode = self._episode, None
            log.info(
                "Accepting uploads again, after refusing %d in %.0f s",
                episode.refused,
                self._clock() - episode.started,
            )

    def _refusing_with(self, refusal: Refusal) -> bool:
        return self._episode is not None and self._episode.refusal == refusal

    def _queue_full(self) -> tuple[Refusal, str] | None:
        try:
            depth = self._queue_depth()
        except Exception as exc:  # the hook that follows reports a broken database
            log.debug("Cannot count the queued uploads: %s", exc)
            return None
        limit: float = self._max_queued
        if self._refusing_with(Refusal.QUEUE_FULL):
            limit *= 1 - RESUME_MARGIN
        if depth < limit:
            return None
        reason = (
            f"{depth} uploads wait for analysis (ftp_server.max_queued_uploads: {self._max_queued})"
        )
        return Refusal.QUEUE_FULL, reason

    def _disk_full(self) -> tuple[Refusal, str] | None:
        if not self._min_free_bytes:
            return None
        wanted: float = self._min_free_bytes
        if self._refusing_with(Refusal.DISK_FULL):
            wanted *= 1 + RESUME_MARGIN
        for folder in self._folders:
            free = free_bytes(folder)
            if free is not None and free < wanted:
                reason = (
                    f"{free / MB:.1f} MB free on {folder}"
                    f" (ftp_server.min_free_mb: {self._min_free_bytes / MB:g})"
                )
                return Refusal.DISK_FULL, reason
        return None


def free_bytes(folder: Path) -> int | None:
    """Space an unprivileged writer may still use there; None when it cannot be told."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None  # not created yet: the write itself will tell
    return stats.f_bavail * stats.f_frsize
