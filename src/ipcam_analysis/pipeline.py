"""One queued upload through the stages: validate → window → detect → decide → notify → record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ipcam_analysis.config import AppConfig, CameraSettings
from ipcam_analysis.detect import PAID_KINDS, Detector, DetectorError
from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    draw_boxes,
    encode_jpeg,
    hash_distance,
    perceptual_hash,
)
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.queue import QueuedItem, UploadQueue
from ipcam_analysis.rules import decide, describe_labels, filter_labels, matching_sensors
from ipcam_analysis.rules.budget import budget_level, budget_notice, limits_for
from ipcam_analysis.rules.repeats import drop_cooling_down, drop_stationary, object_kind
from ipcam_analysis.rules.windows import describe_time_windows, in_time_windows
from ipcam_analysis.store import EventRecord, EventStore, FilterMemory
from ipcam_analysis.store.uploads import read_upload, remove_upload
from ipcam_analysis.values import (
    ALERT,
    CORRUPT,
    DUPLICATE,
    ERROR,
    MISSING,
    NO_MATCH,
    NOT_IMAGE,
    OUTSIDE_WINDOW,
    RETRY,
    SKIPPED,
    SUPPRESSED,
    Alert,
    Decision,
    Detection,
    NotifyOutcome,
    Snapshot,
)

log = logging.getLogger(__name__)

# An upload that hits an unexpected exception (a bug) is retried this often, then recorded as
# an error event.
MAX_INTERNAL_ERRORS = 3


def describe_item(item: QueuedItem) -> str:
    """How every log line names an upload: `cam01 (event 42, 2026/12/03/x.jpg)`."""
    return f"{item.upload.camera} (event {item.id}, {item.upload.original_name})"


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
        memory: FilterMemory,
        metrics: Metrics,
        notifiers: Mapping[str | None, Sequence[Notifier]],
        errors: ErrorReporter,
    ) -> None:
        """`notifiers` by camera; the None entry serves cameras no longer configured."""
        self._config = config
        self._queue = queue
        self._store = store
        self._memory = memory
        self._metrics = metrics
        self._notifiers = notifiers
        self._errors = errors

    def process(self, item: QueuedItem, detectors: Callable[[str], Detector]) -> str:
        """Take the item to a final outcome, or back to the queue for a retry; returns which.

        `detectors(kind)` gives this worker's detector of a kind."""
        upload = item.upload
        camera = self._config.camera(upload.camera)
        progress = _Progress(item, camera, detection=item.detection)
        about = describe_item(item)
        log.info("Processing image from %s", about)
        try:
            data = read_upload(upload)
            progress.file_size = len(data)
            progress.snapshot = decode_snapshot(data)
        except FileNotFoundError:
            log.warning("Upload from %s vanished before analysis", about)
            return self._finish(progress, MISSING)
        except NotAnImageError as exc:
            # The camera's FTP "Test" button uploads a small non-image file: not an error.
            log.info("Connection test or non-image upload from %s: %s", about, exc)
            return self._finish(progress, NOT_IMAGE, str(exc))
        except CorruptImageError as exc:
            log.warning("Damaged image from %s: %s", about, exc)
            return self._finish(progress, CORRUPT, str(exc))
        except OSError as exc:
            return self._failed(progress, f"cannot read the upload ({exc})", transient=True)

        windows = camera.time_windows
        if windows and not in_time_windows(windows, upload.received_at):
            log.info(
                "Image from %s ignored: not in time window %s",
                about,
                describe_time_windows(windows),
            )
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
        last_hash = self._memory.last_frame_hash(camera.name)
        distance = None if last_hash is None else hash_distance(last_hash, frame_hash)
        if max_distance and distance is not None and distance <= max_distance:
            log.info(
                "Same picture as the last one from %s (distance %d): not analysed",
                describe_item(item),
                distance,
            )
            return self._finish(
                progress, DUPLICATE, f"same picture as the last one (distance {distance})"
            )
        kind = camera.detector
        if kind in PAID_KINDS and not self._cloud_budget_allows(camera, now):
            fallback = self._config.budget.on_exhausted
            if fallback == "none":
                return self._finish(progress, SKIPPED, "cloud budget exhausted")
            kind = fallback
        try:
            progress.detection = detectors(kind).detect(snapshot)
        except DetectorError as exc:
            return self._failed(progress, str(exc), transient=exc.transient)
        # Saved first: from here on a crash never pays for this picture again, and never
        # finds its own hash as "the last picture" (which would make it a duplicate).
        self._detected(item, progress.detection)
        self._memory.remember_frame(camera.name, frame_hash, now)
        self._count_cloud_calls(camera.name, progress.detection.cloud_calls, now)
        return None

    def _cloud_budget_allows(self, camera: CameraSettings, now: float) -> bool:
        """Whether a paid call is within every cap; each warning is sent once per period."""
        overall = self._config.budget
        allowed = True
        for limit in limits_for(camera.name, overall, camera.budget, now):
            used = self._memory.cloud_calls(limit.period, limit.camera)
            level = budget_level(used, limit, overall.warn_percent)
            allowed = allowed and level != "exhausted"
            if level and self._memory.first_budget_notice(limit.period, limit.scope, level):
                self._errors.notice(budget_notice(used, limit, level, overall.on_exhausted))
        return allowed

    def _count_cloud_calls(self, camera: str, calls: int, now: float) -> None:
        """Add paid calls; the day's totals go to the log, so spend is visible without the
        dashboard."""
        if not calls:
            return
        today = self._memory.count_cloud_calls(
            datetime.fromtimestamp(now).strftime("%Y-%m-%d"), camera, calls
        )
        cap = self._config.budget.daily_calls
        log.info(
            "Cloud calls today: %d%s (%s: %d)",
            sum(today.values()),
            f" of {cap}" if cap is not None else "",
            camera,
            today.get(camera, 0),
        )

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
        about = describe_item(progress.item)
        if not decision.alert:
            log.info("Nothing of interest from %s", about)
            self._errors.clear(camera.name)
            return self._finish(progress, NO_MATCH, "; ".join(progress.filtered) or None)
        if progress.item.notified:
            # A channel already delivered this alert: it stands, so the others get it too
            # (the cooldown and stationary memories may have learnt of it since).
            return self._notify(progress)
        matched = decision.matched
        now = time.time()
        stationary = camera.filters.stationary
        if stationary.enabled:
            remembered = self._memory.remembered_objects(
                camera.name, now - stationary.forget_after_minutes * 60
            )
            matched, reasons, seen_again = drop_stationary(matched, remembered, stationary)
            self._memory.objects_seen_again(seen_again, now)
            progress.filtered.extend(reasons)
        if camera.filters.cooldown_seconds:
            last_alerts = self._memory.last_alerts(camera.name)
            matched, reasons = drop_cooling_down(
                matched, last_alerts, camera.filters.cooldown_seconds, now
            )
            progress.filtered.extend(reasons)
        progress.decision = replace(decision, alert=bool(matched), matched=matched)
        if not matched:
            log.info("Alert for %s suppressed: %s", about, "; ".join(progress.filtered))
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
            "%s answered for %s in %.0f ms: %s",
            detection.detector,
            describe_item(item),
            detection.elapsed_ms,
            describe_labels(detection.labels),
        )

    def _notify(self, progress: _Progress) -> str:
        item, snapshot, decision = progress.item, progress.snapshot, progress.decision
        assert snapshot is not None and decision is not None
        upload, about = item.upload, describe_item(item)
        log.info(
            "DETECTED LABELS from %s: %s",
            about,
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
            sensors=matching_sensors(decision.matched, self._config.sensor_labels),
        )
        retry_causes: list[str] = []
        failures: list[str] = []
        notifiers = self._notifiers.get(upload.camera, self._notifiers[None])
        for notifier in notifiers:
            if notifier.name in item.notified:
                progress.notifications.append(
                    NotifyOutcome(notifier.name, True, "sent by an earlier attempt")
                )
                continue
            outcome = _send_safely(notifier, alert, about)
            progress.notifications.append(outcome)
            if outcome.ok:
                # At once: until this commits, a crash means this channel sends it again.
                self._queue.mark_notified(item.id, notifier.name)
                log.info("Alert for %s sent by %s %s", about, notifier.name, outcome.detail)
                continue
            self._metrics.notification_failures.labels(notifier.name).inc()
            if outcome.retry:
                retry_causes.append(f"{notifier.name}: {outcome.detail}")
            else:
                log.error("Alert for %s not sent by %s: %s", about, notifier.name, outcome.detail)
                failures.append(f"{notifier.name}: {outcome.detail}")
        if retry_causes:
            return self._failed(progress, "; ".join(retry_causes), transient=True)
        if failures:
            self._errors.report(upload.camera, "; ".join(failures))
        else:
            self._errors.clear(upload.camera)
        self._metrics.alerts.labels(upload.camera).inc()
        now = time.time()
        self._memory.remember_alert(upload.camera, decision.matched, now)
        self._memory.remember_objects(
            upload.camera,
            [
                (object_kind(match.label), instance.box)
                for match in decision.matched
                for instance in match.label.instances
            ],
            now,
        )
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
        remove_upload(item.upload)
        return outcome

    def failed_unexpectedly(self, item: QueuedItem, cause: str) -> str:
        """After an exception no stage expected (a bug): retried with backoff a few times, then
        recorded as an error event, with the error e-mail."""
        progress = _Progress(
            item, self._config.camera(item.upload.camera), detection=item.detection
        )
        return self._failed(progress, cause, transient=item.attempts + 1 < MAX_INTERNAL_ERRORS)

    def _failed(self, progress: _Progress, cause: str, *, transient: bool) -> str:
        """Retry with backoff while it may help and the upload is not too old; else give up loudly."""
        retry = self._config.retry
        item = progress.item
        attempt = item.attempts + 1
        age_hours = (time.time() - item.upload.received_at.timestamp()) / 3600
        camera, about = item.upload.camera, describe_item(item)
        if transient and age_hours < retry.give_up_after_hours:
            delay = min(retry.first_delay_seconds * 2 ** (attempt - 1), retry.max_delay_seconds)
            log.warning(
                "%s (image from %s, attempt %d); retrying in %.0f s", cause, about, attempt, delay
            )
            self._queue.retry_later(item.id, cause, delay)
            if attempt == retry.error_email_after_attempts:
                self._errors.report(camera, cause)
            return RETRY
        log.error("Image processing error for %s: %s", about, cause)
        self._errors.report(camera, cause)
        return self._finish(progress, ERROR, cause)


def _send_safely(notifier: Notifier, alert: Alert, about: str) -> NotifyOutcome:
    """A notifier that raises (a bug, an unforeseen library error) fails its own channel only,
    and is retried like a network failure; the channels after it still send."""
    try:
        return notifier.send(alert)
    except Exception as exc:
        log.exception("Unexpected error in notifier %s for %s", notifier.name, about)
        return NotifyOutcome(
            notifier.name, ok=False, detail=f"internal error ({type(exc).__name__})", retry=True
        )
