"""The detector interface: a snapshot in, labels out; the base of each detector's settings and
what a detector is built with besides them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Detection, Snapshot, WatchedLabels

if TYPE_CHECKING:
    from ipcam_analysis.detect.rekognition import RekognitionConfig


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


class DetectorSettings(StrictModel):
    """The base of each detector's settings class, which narrows `type` to its own kind (a
    Literal): the `detector:` section is told apart by it."""

    type: str


@dataclass(frozen=True)
class DetectorContext:
    """What a detector is built with besides its own settings."""

    region: str | None  # aws_region: where Rekognition is called (None: the AWS environment's)
    rekognition: RekognitionConfig  # the `rekognition:` section in force: a cascade's cloud stage
