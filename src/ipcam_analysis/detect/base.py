"""The detector interface: a snapshot in, labels out."""

from __future__ import annotations

from typing import Protocol

from ipcam_analysis.values import Detection, Snapshot, WatchedLabels


class DetectorError(Exception):
    """A detector could not answer. `transient` errors are retried (network, throttling, outage)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Detector(Protocol):
    """Finds labels in one image. One instance is used by one worker thread at a time."""

    kind: str

    def detect(self, snapshot: Snapshot, watched: WatchedLabels) -> Detection:
        """What is in the picture. `watched` is what the camera that sent it alerts on: a
        detector may look harder, or pay, only for that; most report everything they see."""
        ...

    def close(self) -> None: ...
