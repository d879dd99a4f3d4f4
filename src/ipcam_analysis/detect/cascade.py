"""The cascade: the local detector screens every image; Rekognition confirms only the candidates."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import field_validator

from ipcam_analysis.detect.base import Detector, DetectorContext, DetectorSettings
from ipcam_analysis.detect.local import LocalDetector, LocalModelSettings
from ipcam_analysis.detect.rekognition import RekognitionDetector
from ipcam_analysis.detect.thresholds import LabelThresholds, PercentByLabel, named_thresholds
from ipcam_analysis.values import Detection, Label, Snapshot, WatchedLabels

log = logging.getLogger(__name__)


DEFAULT_CANDIDATE_PERCENT = 15.0


class CascadeDetectorConfig(LocalModelSettings, DetectorSettings):
    """`detector: {type: cascade}`. The cloud's settings are the top level's (`rekognition:`,
    `aws_region`); what to watch for comes with each picture (the camera's `labels`)."""

    type: Literal["cascade"] = "cascade"
    # Below the local detector's 25 %: here it only screens and Rekognition has the last word,
    # so an unsure sighting costs one cloud call rather than a missed alert. A map by label or
    # parent ({Animal: 8, Person: 15, default: 15}) lets an animal camera ask about weak animal
    # candidates while people and cars stay as cheap.
    candidate_confidence_percent: PercentByLabel = DEFAULT_CANDIDATE_PERCENT

    _names = field_validator("candidate_confidence_percent")(named_thresholds)


class CloudGate:
    """Decides from the local labels whether an image needs Rekognition, and says why."""

    def __init__(
        self, vocabulary: frozenset[str], thresholds: LabelThresholds | None = None
    ) -> None:
        self._vocabulary = vocabulary
        self.thresholds = thresholds or LabelThresholds(DEFAULT_CANDIDATE_PERCENT)

    def screen(
        self, local_labels: Sequence[Label], watched: WatchedLabels
    ) -> tuple[tuple[Label, ...], str | None]:
        """The local labels at their own thresholds, and why the cloud must look (for the log),
        or None when they rule it out.

        A candidate is what would alert if the local labels were the answer: in alarm mode a
        watched label (by name, parent or alias), in new-labels mode anything not listed.
        """
        kept = self.thresholds.passing(local_labels)
        # A watched label the local model cannot name (Package, Fire, ...) cannot be ruled out
        # locally: every image goes to the cloud rather than never alerting on it.
        unknown = (
            []
            if watched.new_labels_only
            else [name for name in watched.names if name.casefold() not in self._vocabulary]
        )
        if unknown:
            return kept, f"watched labels unknown locally: {', '.join(unknown)}"
        names = watched.folded
        candidates = [lb for lb in kept if _listed(lb, names) != watched.new_labels_only]
        if not candidates:
            return kept, None
        return kept, "candidates " + ", ".join(
            f"{lb.name} {lb.confidence:.0f}%" for lb in candidates
        )


def _listed(label: Label, names: frozenset[str]) -> bool:
    """Whether a local label is one of the (case-folded) names, by its name, a parent or an
    alias: what the local detector answers has no categories or merged runner-ups yet."""
    return any(word.casefold() in names for word in (label.name, *label.parents, *label.aliases))


def local_stage(settings: CascadeDetectorConfig) -> tuple[LocalDetector, CloudGate]:
    """A cascade's screening half: a local detector at the lowest candidate threshold, and the
    gate that holds each label to its own."""
    thresholds = LabelThresholds.parse(
        settings.candidate_confidence_percent, DEFAULT_CANDIDATE_PERCENT
    )
    local = LocalDetector(settings, thresholds.lowest)
    return local, CloudGate(local.vocabulary, thresholds)


class CascadeDetector:
    """Local first; Rekognition only for candidates, and then its answer is the answer."""

    kind = "cascade"

    def __init__(self, local: LocalDetector, gate: CloudGate, cloud: Detector) -> None:
        self._local = local
        self._gate = gate
        self._cloud = cloud

    @classmethod
    def build(cls, settings: CascadeDetectorConfig, context: DetectorContext) -> CascadeDetector:
        local, gate = local_stage(settings)
        return cls(local, gate, RekognitionDetector(context.rekognition, context.region))

    def detect(self, snapshot: Snapshot, watched: WatchedLabels) -> Detection:
        """`watched`: what the camera that sent the picture alerts on."""
        started = time.perf_counter()
        screened, reason = self._gate.screen(self._local.detect(snapshot).labels, watched)
        if reason is None:
            # Nothing here can alert: the local labels are kept for the record only.
            return Detection(self.kind, screened, _since(started), cloud_calls=0)
        log.debug("Asking Rekognition: %s", reason)
        confirmed = self._cloud.detect(snapshot, watched)
        return Detection(self.kind, confirmed.labels, _since(started), confirmed.cloud_calls)

    def close(self) -> None:
        self._local.close()
        self._cloud.close()


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
