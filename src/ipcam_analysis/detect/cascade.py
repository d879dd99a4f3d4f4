"""The cascade: the local detector screens every image; Rekognition confirms only the candidates."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from ipcam_analysis.detect.base import Detector
from ipcam_analysis.detect.local import LocalDetector, LocalModelSettings
from ipcam_analysis.detect.rekognition import RekognitionConfig, RekognitionDetector
from ipcam_analysis.rules import decide
from ipcam_analysis.values import Detection, Label, Snapshot

log = logging.getLogger(__name__)


class CascadeDetectorConfig(LocalModelSettings):
    """`detector: {type: cascade}`. The cloud's settings and what to watch for are filled from
    the top level (`rekognition:`, `aws_region`, `labels`, `new_labels_only`)."""

    type: Literal["cascade"] = "cascade"
    # Below the local detector's 25 %: here it only screens and Rekognition has the last word,
    # so an unsure sighting costs one cloud call rather than a missed alert.
    candidate_confidence_percent: float = Field(15, gt=0, le=100)
    cloud: RekognitionConfig = Field(default_factory=RekognitionConfig)
    watched_labels: tuple[str, ...] = ("Person", "Vehicle", "Animal")
    new_labels_only: bool = False


class CloudGate:
    """Decides from the local labels whether an image needs Rekognition, and says why."""

    def __init__(self, watched: Sequence[str], new_labels_only: bool, vocabulary: frozenset[str]):
        self._watched = list(watched)
        self._new_labels_only = new_labels_only
        # A watched label the local model cannot name (Package, Fire, ...) cannot be ruled out
        # locally: every image goes to the cloud rather than never alerting on it.
        self.unknown = (
            ()
            if new_labels_only
            else tuple(name for name in watched if name.casefold() not in vocabulary)
        )
        if self.unknown:
            log.warning(
                "The local detector cannot recognise %s: the cascade sends every image to "
                "Rekognition (use the rekognition detector, or remove them from labels)",
                ", ".join(self.unknown),
            )

    def reason(self, local_labels: Sequence[Label]) -> str | None:
        """Why the cloud must look (for the log), or None when the local answer rules it out.

        A candidate is what would alert if the local labels were the answer: in alarm mode a
        watched label (by name, parent or alias), in new-labels mode anything not listed.
        """
        if self.unknown:
            return f"watched labels unknown locally: {', '.join(self.unknown)}"
        matched = decide(local_labels, self._watched, self._new_labels_only).matched
        if not matched:
            return None
        return "candidates " + ", ".join(
            f"{m.label.name} {m.label.confidence:.0f}%" for m in matched
        )


def local_stage(settings: CascadeDetectorConfig) -> tuple[LocalDetector, CloudGate]:
    """A cascade's screening half: a local detector at the candidate threshold, and its gate."""
    local = LocalDetector(settings, settings.candidate_confidence_percent)
    gate = CloudGate(settings.watched_labels, settings.new_labels_only, local.vocabulary)
    return local, gate


class CascadeDetector:
    """Local first; Rekognition only for candidates, and then its answer is the answer."""

    kind = "cascade"

    def __init__(self, local: LocalDetector, gate: CloudGate, cloud: Detector) -> None:
        self._local = local
        self._gate = gate
        self._cloud = cloud

    @classmethod
    def from_settings(cls, settings: CascadeDetectorConfig) -> CascadeDetector:
        local, gate = local_stage(settings)
        return cls(local, gate, RekognitionDetector(settings.cloud))

    def detect(self, snapshot: Snapshot) -> Detection:
        started = time.perf_counter()
        screened = self._local.detect(snapshot)
        reason = self._gate.reason(screened.labels)
        if reason is None:
            # Nothing here can alert: the local labels are kept for the record only.
            return Detection(self.kind, screened.labels, _since(started), cloud_calls=0)
        log.debug("Asking Rekognition: %s", reason)
        confirmed = self._cloud.detect(snapshot)
        return Detection(self.kind, confirmed.labels, _since(started), confirmed.cloud_calls)

    def close(self) -> None:
        self._local.close()
        self._cloud.close()


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
