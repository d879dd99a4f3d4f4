"""The detect step: a picture, or a clip's sampled frames, through the camera's detector within
the cloud budget, each object named once; or why it was not analysed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ipcam_analysis.detect import Detector
from ipcam_analysis.imaging import perceptual_hash
from ipcam_analysis.imaging.clips import UnreadableClipError
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.rules import describe_labels, one_name_per_object
from ipcam_analysis.rules.camera import CameraSettings
from ipcam_analysis.service.clip_analysis import ClipAnalysis, analyse_clip
from ipcam_analysis.service.decisions import CameraDecisions
from ipcam_analysis.service.pending_writes import PendingWrites
from ipcam_analysis.store.queue import QueuedItem, UploadQueue
from ipcam_analysis.values import DUPLICATE, SKIPPED, UNREADABLE_CLIP, Detection, Snapshot

log = logging.getLogger(__name__)

BUDGET_EXHAUSTED = "cloud budget exhausted"


@dataclass(frozen=True)
class NotAnalysed:
    """Why the detector was not asked: the event's outcome and reason."""

    outcome: str
    reason: str


class Detecting:
    """What the camera's detector sees, each paid call reserved from the budget first; a
    detector that fails raises DetectorError, its reservations given back."""

    def __init__(self, decisions: CameraDecisions, queue: UploadQueue, metrics: Metrics) -> None:
        self._decisions = decisions
        self._queue = queue
        self._metrics = metrics

    def picture(
        self,
        item: QueuedItem,
        camera: CameraSettings,
        snapshot: Snapshot,
        detectors: Callable[[str], Detector],
        pending: PendingWrites,
    ) -> Detection | NotAnalysed:
        """The detection to decide on, unless the picture repeats the camera's last one or the
        budget allows no call. Each object is named once, here: what is decided, sent and
        recorded (as `ipcam-analysis detect` prints it), and what a retry reuses. The calls
        counted and the detection kept are `pending`, together: a crash keeps both or neither."""
        now = time.time()
        distance = self._repeated_frame(item, camera, snapshot, now)
        if distance is not None:
            log.info(
                "Same picture as the last one from %s (distance %d): not analysed",
                item.about,
                distance,
            )
            return NotAnalysed(DUPLICATE, f"same picture as the last one (distance {distance})")
        calls = self._decisions.paid_calls(camera)
        try:
            answer = calls.detect(detectors, snapshot, now)
        except BaseException:
            # A call that failed is not paid for: the reservation goes back.
            calls.settle(now)
            raise
        if answer is None:
            return NotAnalysed(SKIPPED, BUDGET_EXHAUSTED)
        detection = one_name_per_object(answer, camera.filters, camera.min_confidence_percent)
        pending.add(partial(calls.settle, now))
        pending.add(partial(self._queue.save_detection, item.id, detection))
        self._answered(item, answer)
        return detection

    def _repeated_frame(
        self, item: QueuedItem, camera: CameraSettings, snapshot: Snapshot, now: float
    ) -> int | None:
        """The distance to the camera's last frame when this one repeats it; with the duplicate
        filter off, no hash is made and no frame remembered."""
        if not camera.filters.duplicate_hash_distance:
            return None
        frame_hash = perceptual_hash(snapshot.image)
        return self._decisions.repeated_frame(camera, item.id, frame_hash, now)

    def clip(
        self,
        item: QueuedItem,
        camera: CameraSettings,
        data: bytes,
        container: str,
        detectors: Callable[[str], Detector],
        pending: PendingWrites,
    ) -> ClipAnalysis | NotAnalysed:
        """The clip's best frame and what was seen where, unless no frame decodes or the budget
        allows no call. Analysed again whole on a retry (only its decision and deliveries are
        kept); the calls counted are `pending`."""
        calls = self._decisions.paid_calls(camera)
        try:
            clip = analyse_clip(
                data,
                container,
                camera,
                lambda snapshot: calls.detect(detectors, snapshot, time.time()),
            )
        except UnreadableClipError as exc:
            log.info("Unreadable clip from %s: %s", item.about, exc)
            pending.add(partial(calls.settle, time.time()))
            return NotAnalysed(UNREADABLE_CLIP, str(exc))
        except BaseException:
            calls.settle(time.time())  # a call that failed is not paid for
            raise
        pending.add(partial(calls.settle, time.time()))
        if clip.detection is None:
            return NotAnalysed(SKIPPED, BUDGET_EXHAUSTED)
        self._answered(item, clip.detection)
        return clip

    def _answered(self, item: QueuedItem, detection: Detection) -> None:
        self._metrics.detector_answered(
            detection.detector,
            detection.elapsed_ms / 1000,
            item.upload.camera,
            detection.cloud_calls,
        )
        log.info(
            "%s answered for %s in %.0f ms: %s",
            detection.detector,
            item.about,
            detection.elapsed_ms,
            describe_labels(detection.labels),
        )
