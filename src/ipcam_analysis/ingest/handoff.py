"""What every source hands its uploads to (the intake, service/intake.py), and the words for why
the intake does not take them, which each source says in its own protocol's terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ipcam_analysis.values import Upload


class Refusal(Enum):
    """Why the intake takes no upload now: said by each source in its own words (an FTP or
    SMTP reply, an HTTP status), never read back from another protocol's. All are temporary:
    the camera keeps its pictures and sends them again."""

    QUEUE_FULL = "too many uploads wait for analysis"
    DISK_FULL = "too little free space on the server"
    NOT_STORED = "the upload could not be written"
    NOT_QUEUED = "the upload could not be queued"


@dataclass(frozen=True)
class Received:
    """An upload whose bytes the source holds in memory (HTTP, SMTP, ONVIF). With local storage
    the intake writes them at `upload.path` (fsynced) before queueing it; with shared storage it
    sends them there, and no file is made here."""

    upload: Upload
    data: bytes


class NotAccepted(Exception):
    """None of the uploads handed over together is queued, and no copy of them is left (the
    intake has logged why): the source refuses them instead of acknowledging them."""

    def __init__(self, refusal: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.refusal = refusal
        self.reason = reason  # one line; for a write that failed, the system's words


class UploadIntake(Protocol):
    """The one way into the queue, shared by every source (and its admission check)."""

    def refusal(self) -> Refusal | None:
        """Why no upload may start now (the queue or the disk is full), or None. Cheap: asked
        before each upload, by FTP in its one IO thread."""
        ...

    def recheck_refusal(self) -> None:
        """While refusing, look again whether there is room: the log then says at once that
        uploads resume, not at the next upload."""
        ...

    def accept(self, uploads: Sequence[Upload | Received]) -> list[int]:
        """The uploads received together, queued in one transaction: their queue ids, returned
        once committed (acknowledge them only then). Raises NotAccepted, all or none."""
        ...
