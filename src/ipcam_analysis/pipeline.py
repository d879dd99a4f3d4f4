"""One queued upload through the stages: validate → window → detect → decide → notify → record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ipcam_analysis.annotate import draw_boxes, encode_jpeg
from ipcam_analysis.config import (
    AppConfig,
    CameraSettings,
    describe_time_windows,
    in_time_windows,
)
from ipcam_analysis.detect import Detector, DetectorError
from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    perceptual_hash,
)
from ipcam_analysis.memory import Memory
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.models import Alert, Decision, Detection, NotifyOutcome, Snapshot, Upload
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.queue import QueuedItem, UploadQueue
from ipcam_analysis.rules import decide, describe_labels, filter_labels
from ipcam_analysis.store import EventRecord, EventStore

log = logging.getLogger(__name__)

# Outcomes recorded for each upload.
ALERT, NO_MATCH, OUTSIDE_WINDOW = "alert", "no_match", "outside_window"
DUPLICATE, SUPPRESSED, SKIPPED = "duplicate", "suppressed", "skipped"
NOT_IMAGE, CORRUPT, MISSING, ERROR = "not_image", "corrupt", "missing", "error"
CLOUD_DETECTORS = frozenset({"rekognition", "cascade"})
RETRY = "retry"  # not final: the item is back in the queue


@dataclass
class _Progress:
    """What one attempt has learned so far; it becomes the event when the upload is finished."""

    item: QueuedItem
    camera: CameraSettings
    file_size: int | None = None
    snapshot: Snapshot | None = None
    detection: Detection | None = None
    decision: Decision | None = None
    notifications: list[NotifyOutcome] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)  # why labels or objects were dropped


class Pipeline:
    """Processes one item at a time per worker; all state lives in the database."""

    def __init__(
        self,
        config: AppConfig,
        queue: UploadQueue,
        store: EventStore,
        memory: Memory,
        metrics: Metrics,
        notifiers_for: Callable[[str], Sequence[Notifier]],
        errors: ErrorReporter,
        remove_upload: Callable[[Upload], None] | None = None,
    ) -> None:
        self._config = config
        self._queue = queue
        self._store = store
        self._memory = memory
        self._metrics = metrics
        self._notifiers_for = notifiers_for
        self._errors = errors
        self._remove_upload = remove_upload

    def process(self, item: QueuedItem, detectors: Callable[[str], Detector]) -> str:
        """Take the item to a final outcome, or back to the queue for a retry; returns which.

        `detectors(kind)` gives this worker's detector of a kind."""
        upload = item.upload
        camera = self._config.camera(upload.camera)
        progress = _Progress(item, camera, detection=item.detection)
        log.info("Processing image %s from %s", upload.original_name, upload.camera)
        try:
            data = upload.path.read_bytes()
            progress.file_size = len(data)
            progress.snapshot = decode_snapshot(data)
        except FileNotFoundError:
            log.warning(
                "Upload %s from %s vanished before analysis", upload.original_name, upload.camera
            )
            return self._finish(progress, MISSING)
        except NotAnImageError as exc:
            # The camera's FTP "Test" button uploads a small non-image file: not an error.
            log.info(
                "Connection test or non-image upload from %s: %s (%s)",
                upload.camera,
                upload.original_name,
                exc,
            )
            return self._finish(progress, NOT_IMAGE, str(exc))
        except CorruptImageError as exc:
            log.warning("Damaged image from %s: %s (%s)", upload.camera, upload.original_name, exc)
            return self._finish(progress, CORRUPT, str(exc))
        except OSError as exc:
            return self._failed(progress, f"cannot read the upload ({exc})", transient=True)

        windows = camera.time_windows
        if windows and not in_time_windows(windows, upload.received_at):
            log.info("Image ignored. Not in time window %s.", describe_time_windows(windows))
            return self._finish(progress, OUTSIDE_WINDOW)

        if progress.detection is None:
            outcome = self._detect(progress, detectors)
            if outcome is not None:
                return outcome
        return self._decide(progress)

    def _detect(self, progress: _Progress, detectors: Callable[[str], Detector]) -> str | None:
        """Run the camera's detector, unless the frame repeats the last one or the cloud budget
        says otherwise; None when there is a detection to decide on."""
        item, camera, snapshot = progress.item, progress.camera, progress.snapshot
        assert snapshot is not None
        now = time.time()
        frame_hash = perceptual_hash(snapshot.image)
        max_distance = camera.filters.duplicate_hash_distance
        distance = self._memory.frames.distance_to_last(camera.name, frame_hash)
        if max_distance and distance is not None and distance <= max_distance:
            log.info(
                "Same picture as the last one from %s (distance %d): not analysed",
                camera.name,
                distance,
            )
            return self._finish(
                progress, DUPLICATE, f"same picture as the last one (distance {distance})"
            )
        kind = camera.detector
        if kind in CLOUD_DETECTORS:
            budget = self._memory.budget.check(camera.name, camera.budget, now)
            for notice in budget.notices:
                self._errors.notice(notice)
            if not budget.allowed:
                fallback = self._config.budget.on_exhausted
                if fallback == "none":
                    return self._finish(progress, SKIPPED, "cloud budget exhausted")
                kind = fallback
        try:
            progress.detection = detectors(kind).detect(snapshot)
        except DetectorError as exc:
            return self._failed(progress, str(exc), transient=exc.transient)
        self._memory.frames.remember(camera.name, frame_hash, now)
        self._memory.budget.count(camera.name, progress.detection.cloud_calls, now)
        self._detected(item, progress.detection)
        return None

    def _decide(self, progress: _Progress) -> str:
        """Filters, then the rule, then the memories (stationary objects, cooldown)."""
        camera, detection = progress.camera, progress.detection
        assert detection is not None
        labels, reasons = filter_labels(
            detection.labels, camera.filters, camera.min_confidence_percent
        )
        progress.filtered.extend(reasons)
        decision = decide(labels, camera.labels, camera.new_labels_only)
        progress.decision = decision
        if not decision.alert:
            log.info("Nothing of interest from %s", camera.name)
            self._errors.clear(camera.name)
            return self._finish(progress, NO_MATCH, "; ".join(progress.filtered) or None)
        matched = decision.matched
        now = time.time()
        if camera.filters.stationary.enabled:
            matched, reasons = self._memory.stationary.filter(
                camera.name, matched, camera.filters.stationary, now
            )
            progress.filtered.extend(reasons)
        if camera.filters.cooldown_seconds:
            matched, reasons = self._memory.cooldowns.filter(
                camera.name, matched, camera.filters.cooldown_seconds, now
            )
            progress.filtered.extend(reasons)
        progress.decision = replace(decision, alert=bool(matched), matched=matched)
        if not matched:
            log.info("Alert for %s suppressed: %s", camera.name, "; ".join(progress.filtered))
            self._errors.clear(camera.name)
            return self._finish(progress, SUPPRESSED, "; ".join(progress.filtered))
        return self._notify(progress)

    def _detected(self, item: QueuedItem, detection: Detection) -> None:
        self._queue.save_detection(item.id, detection)
        self._metrics.detector_answered(
            detection.detector,
            detection.elapsed_ms / 1000,
            item.upload.camera,
            detection.cloud_calls,
        )
        log.info(
            "%s answered in %.0f ms: %s",
            detection.detector,
            detection.elapsed_ms,
            describe_labels(detection.labels),
        )

    def _notify(self, progress: _Progress) -> str:
        item, snapshot, decision = progress.item, progress.snapshot, progress.decision
        assert snapshot is not None and decision is not None
        upload = item.upload
        log.info(
            "DETECTED LABELS from %s: %s",
            upload.camera,
            ", ".join(f"{m.display_name} {m.label.confidence:.1f}%" for m in decision.matched),
        )
        annotated = draw_boxes(
            snapshot.image, decision.matched, self._config.rekognition.image_resize_percent
        )
        alert = Alert(
            camera=upload.camera,
            received_at=upload.received_at,
            matched=decision.matched,
            annotated_jpeg=encode_jpeg(annotated),
            image_size=annotated.size,
            original_name=upload.original_name,
            event_id=item.id,
        )
        retry_causes: list[str] = []
        failures: list[str] = []
        for notifier in self._notifiers_for(upload.camera):
            if notifier.name in item.notified:
                progress.notifications.append(
                    NotifyOutcome(notifier.name, True, "sent by an earlier attempt")
                )
                continue
            outcome = notifier.send(alert)
            progress.notifications.append(outcome)
            if outcome.ok:
                self._queue.mark_notified(item.id, notifier.name)
                log.info("Alert for %s sent by %s %s", upload.camera, notifier.name, outcome.detail)
                continue
            self._metrics.notification_failures.labels(notifier.name).inc()
            if outcome.retry:
                retry_causes.append(f"{notifier.name}: {outcome.detail}")
            else:
                log.error(
                    "Alert for %s not sent by %s: %s", upload.camera, notifier.name, outcome.detail
                )
                failures.append(f"{notifier.name}: {outcome.detail}")
        if retry_causes:
            return self._failed(progress, "; ".join(retry_causes), transient=True)
        if failures:
            self._errors.report(upload.camera, "; ".join(failures))
        else:
            self._errors.clear(upload.camera)
        self._metrics.alerts.labels(upload.camera).inc()
        now = time.time()
        self._memory.cooldowns.remember(upload.camera, decision.matched, now)
        self._memory.stationary.remember(upload.camera, decision.matched, now)
        reasons = [*failures, *progress.filtered]
        return self._finish(progress, ALERT, "; ".join(reasons) or None)

    def _finish(self, progress: _Progress, outcome: str, reason: str | None = None) -> str:
        """Record the event, close the queue item, and remove the upload if configured."""
        item = progress.item
        self._store.record(
            EventRecord(
                item_id=item.id,
                upload=item.upload,
                outcome=outcome,
                reason=reason,
                file_size=progress.file_size,
                snapshot=progress.snapshot,
                detection=progress.detection,
                decision=progress.decision,
                notifications=tuple(progress.notifications),
            )
        )
        self._queue.finish(item.id, outcome, reason)
        self._metrics.outcomes.labels(item.upload.camera, outcome).inc()
        if self._remove_upload is not None:
            self._remove_upload(item.upload)
        return outcome

    def _failed(self, progress: _Progress, cause: str, *, transient: bool) -> str:
        """Retry with backoff while it may help and the upload is not too old; else give up loudly."""
        retry = self._config.retry
        item = progress.item
        attempt = item.attempts + 1
        age_hours = (time.time() - item.upload.received_at.timestamp()) / 3600
        camera = item.upload.camera
        if transient and age_hours < retry.give_up_after_hours:
            delay = min(retry.first_delay_seconds * 2 ** (attempt - 1), retry.max_delay_seconds)
            log.warning(
                "%s (image from %s, attempt %d); retrying in %.0f s", cause, camera, attempt, delay
            )
            self._queue.retry_later(item.id, cause, delay)
            if attempt == retry.error_email_after_attempts:
                self._errors.report(camera, cause)
            return RETRY
        log.error("Image processing error for %s: %s", camera, cause)
        self._errors.report(camera, cause)
        return self._finish(progress, ERROR, cause)
