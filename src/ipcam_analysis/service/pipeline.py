"""One queued upload through the stages: validate → window → detect → decide (a burst as one,
then the repeats) → notify → record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ipcam_analysis.config import AppConfig, CameraSettings
from ipcam_analysis.detect import PAID_KINDS, Detector, DetectorError
from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    draw_boxes,
    encode_jpeg,
    perceptual_hash,
    region_fingerprint,
)
from ipcam_analysis.imaging.clips import CLIP_SUFFIXES, UnreadableClipError, clip_format
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.rules import (
    decide,
    describe_labels,
    drop_learned_exceptions,
    filter_labels,
    matching_sensors,
    one_name_per_object,
    why_not_alerted,
)
from ipcam_analysis.rules.bursts import DECIDES, confirmed_in_burst
from ipcam_analysis.rules.repeats import drop_alerted_by_snapshot
from ipcam_analysis.rules.windows import describe_time_windows, in_time_windows
from ipcam_analysis.service.clip_analysis import MAX_CLOUD_FRAMES, MAX_LOCAL_FRAMES, analyse_clip
from ipcam_analysis.service.decisions import CameraDecisions, camera_key
from ipcam_analysis.store import CameraHistory, EventFilter, EventRecord, EventStore
from ipcam_analysis.store.queue import QueuedItem, UploadQueue
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
    UNREADABLE_CLIP,
    Alert,
    Decision,
    Detection,
    Label,
    MatchedLabel,
    NotifyOutcome,
    Snapshot,
)

log = logging.getLogger(__name__)

BURST_POLL_SECONDS = 1.0  # how often a frame waiting for its burst's other frames looks again

# An upload that hits an unexpected exception (a bug) is retried this often, then recorded as
# an error event.
MAX_INTERNAL_ERRORS = 3
# A snapshot received this long before a clip began (by the clip's length before its upload)
# still shows the clip's motion: cameras send the snapshot at once, the clip once recorded.
SAME_MOTION_SLACK_SECONDS = 10.0
# The reason of a picture with no label left to decide on: the API says what the dashboard says.
NOTHING_FOUND = "nothing found"


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
    clip_note: str = ""  # for a video clip: what was seen where in it
    clip_file: bytes | None = None  # kept with the event
    clip_suffix: str = ""
    clip_seconds: float = 0.0


@dataclass
class _FrameCalls:
    """A clip's paid calls: reserved by the budget, made by the detector, settled together."""

    kind: str
    reserved: int = 0
    made: int = 0


class Pipeline:
    """Processes one item at a time per worker; all state lives in the database."""

    def __init__(
        self,
        config: AppConfig,
        queue: UploadQueue,
        store: EventStore,
        memory: CameraHistory,
        metrics: Metrics,
        notifiers: Mapping[str | None, Sequence[Notifier]],
        errors: ErrorReporter,
    ) -> None:
        """`notifiers` by camera; the None entry serves cameras no longer configured."""
        self._config = config
        self._queue = queue
        self._store = store
        self._memory = memory
        self._decisions = CameraDecisions(memory, config.budget, errors.notice)
        self._metrics = metrics
        self._notifiers = notifiers
        self._errors = errors

    def process(self, item: QueuedItem, detectors: Callable[[str], Detector]) -> str:
        """Take the item to a final outcome, or back to the queue for a retry; returns which.

        `detectors(kind)` gives this worker's detector of a kind."""
        upload = item.upload
        camera = self._config.camera(upload.camera)
        progress = _Progress(item, camera, detection=item.detection)
        about = item.about
        log.info("Processing image from %s", about)
        try:
            data = read_upload(self._store.storage, upload)
            progress.file_size = len(data)
            container = clip_format(data)
            if container is None:
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

        if container is not None:
            outcome = self._analyse_clip(progress, data, container, detectors)
            if outcome is not None:
                return outcome
        elif progress.detection is None:
            outcome = self._detect(progress, detectors)
            if outcome is not None:
                return outcome
        assert progress.detection is not None
        # What is decided, sent and recorded (and what `ipcam-analysis detect` prints).
        progress.detection = one_name_per_object(
            progress.detection, camera.filters, camera.min_confidence_percent
        )
        if item.decision is not None:  # decided by an earlier attempt; only alerting is left
            progress.decision = item.decision
            progress.filtered.extend(item.filtered)
            return self._notify(progress)
        return self._decide(progress)

    def _detect(self, progress: _Progress, detectors: Callable[[str], Detector]) -> str | None:
        """Run the camera's detector, unless the frame repeats the last one or the cloud budget
        says otherwise; None when there is a detection to decide on."""
        item, camera, snapshot = progress.item, progress.camera, progress.snapshot
        assert snapshot is not None
        now = time.time()
        frame_hash = perceptual_hash(snapshot.image)
        distance = self._decisions.repeated_frame(camera, item.id, frame_hash, now)
        if distance is not None:
            log.info(
                "Same picture as the last one from %s (distance %d): not analysed",
                item.about,
                distance,
            )
            return self._finish(
                progress, DUPLICATE, f"same picture as the last one (distance {distance})"
            )
        kind, reserved = camera.detector, 0
        if kind in PAID_KINDS:
            if self._decisions.reserve_cloud_call(camera, now):
                reserved = 1
            elif self._config.budget.on_exhausted == "none":
                return self._finish(progress, SKIPPED, "cloud budget exhausted")
            else:
                kind = self._config.budget.on_exhausted
        try:
            progress.detection = detectors(kind).detect(snapshot, camera.watched)
        except BaseException as exc:
            # A call that failed is not paid for: the reservation goes back.
            self._decisions.settle_cloud_calls(camera.name, reserved, 0, now)
            if isinstance(exc, DetectorError):
                return self._failed(progress, str(exc), transient=exc.transient)
            raise
        # The calls counted and the detection kept together: a crash keeps both or neither.
        with self._memory.atomically():
            self._decisions.settle_cloud_calls(
                camera.name, reserved, progress.detection.cloud_calls, now
            )
            self._queue.save_detection(item.id, progress.detection)
        self._detected(item, progress.detection)
        return None

    def _analyse_clip(
        self,
        progress: _Progress,
        data: bytes,
        container: str,
        detectors: Callable[[str], Detector],
    ) -> str | None:
        """A clip's sampled frames through the camera's detector, each paid frame reserved
        from the budget; None when its best frame is ready to decide on. Analysed again
        whole on a retry (only its decision and deliveries are kept)."""
        item, camera = progress.item, progress.camera
        calls = _FrameCalls(camera.detector)

        def detect_frame(snapshot: Snapshot) -> Detection | None:
            if calls.kind in PAID_KINDS:
                if self._decisions.reserve_cloud_call(camera, time.time()):
                    calls.reserved += 1
                elif self._config.budget.on_exhausted == "none":
                    return None
                else:
                    calls.kind = self._config.budget.on_exhausted
            detection = detectors(calls.kind).detect(snapshot, camera.watched)
            calls.made += detection.cloud_calls
            return detection

        paid = camera.detector in PAID_KINDS
        try:
            clip = analyse_clip(
                data,
                container,
                camera,
                detect_frame,
                MAX_CLOUD_FRAMES if paid else MAX_LOCAL_FRAMES,
                jpeg_frames=paid,
            )
        except UnreadableClipError as exc:
            log.info("Unreadable clip from %s: %s", item.about, exc)
            return self._finish(progress, UNREADABLE_CLIP, str(exc))
        except DetectorError as exc:
            return self._failed(progress, str(exc), transient=exc.transient)
        finally:
            self._decisions.settle_cloud_calls(camera.name, calls.reserved, calls.made, time.time())
        if clip.detection is None:
            return self._finish(progress, SKIPPED, "cloud budget exhausted")
        progress.snapshot, progress.detection = clip.snapshot, clip.detection
        progress.clip_note, progress.clip_seconds = clip.describe(), clip.duration_seconds
        progress.clip_file, progress.clip_suffix = data, CLIP_SUFFIXES[container]
        self._detected(item, clip.detection)
        return None

    def _decide(self, progress: _Progress) -> str:
        """Filters, then the rule; a burst's frames wait for each other and its strongest
        decides for it; then the repeats (stationary objects, cooldown), decided and
        remembered with the decision in one transaction."""
        item, camera, detection = progress.item, progress.camera, progress.detection
        assert detection is not None
        labels, reasons = filter_labels(
            detection.labels, camera.filters, camera.min_confidence_percent
        )
        progress.filtered.extend(reasons)
        labels = self._drop_learned_exceptions(progress, labels)
        decision = decide(labels, camera.labels, camera.new_labels_only)
        upload = item.upload
        if not upload.burst_id and camera.filters.confirm.wait_seconds:
            decision, reasons, wait = self._decisions.confirmed_by_next_picture(
                camera, item.id, decision, time.time()
            )
            if wait:
                why = "waiting for the camera's next picture to confirm a weak detection"
                self._queue.hold(item.id, why, BURST_POLL_SECONDS)
                return RETRY
            progress.filtered.extend(reasons)
        progress.decision = decision
        if not decision.alert:
            log.info("Nothing of interest from %s", item.about)
            self._errors.clear(camera.name)
            unwatched = why_not_alerted(decision, camera.new_labels_only)
            reasons = [*progress.filtered, *([unwatched] if unwatched else [])]
            return self._finish(progress, NO_MATCH, "; ".join(reasons) or NOTHING_FOUND)
        with self._memory.atomically(camera_key(camera.name)):
            now = time.time()
            turn = (
                self._decisions.burst_turn(upload, item.id, decision, now)
                if upload.burst_id
                else DECIDES
            )
            if turn.decides:
                matched = decision.matched
                if upload.burst_id:
                    matched, reasons = confirmed_in_burst(
                        matched, turn.others_saw, camera.filters.confirm
                    )
                    progress.filtered.extend(reasons)
                matched, reasons = self._same_motion(progress, matched)
                progress.filtered.extend(reasons)
                matched, reasons = self._decisions.drop_repeats(camera, matched, now)
                progress.filtered.extend(reasons)
                decision = replace(decision, alert=bool(matched), matched=matched)
                if upload.burst_id:
                    self._decisions.burst_decided(upload, item.id, alerted=decision.alert)
                if decision.alert:
                    self._queue.save_decision(item.id, decision, progress.filtered)
        if turn.wait:
            why = "waiting for the other pictures of the same e-mail"
            self._queue.hold(item.id, why, BURST_POLL_SECONDS)
            return RETRY
        progress.decision = decision if turn.decides else replace(decision, alert=False)
        if not turn.decides:
            return self._suppressed(progress, turn.reason)
        if not decision.alert:
            return self._suppressed(progress, "; ".join(progress.filtered))
        return self._notify(progress)

    def _same_motion(
        self, progress: _Progress, matched: tuple[MatchedLabel, ...]
    ) -> tuple[tuple[MatchedLabel, ...], list[str]]:
        """A clip's labels alerted by a snapshot the camera sent since the clip began (plus a
        little, for the upload's own delay) are not alerted again: one motion, one alert."""
        if progress.clip_file is None:
            return matched, []
        upload = progress.item.upload
        since = upload.received_at.timestamp() - progress.clip_seconds - SAME_MOTION_SLACK_SECONDS
        alerts = self._store.events(EventFilter(camera=upload.camera, outcome=ALERT, since=since))
        by_snapshot = {
            name.casefold(): event["id"]
            for event in alerts
            if not event["clip"] and event["id"] != progress.item.id
            for name in event["triggered"]
        }
        return drop_alerted_by_snapshot(matched, by_snapshot)

    def _drop_learned_exceptions(
        self, progress: _Progress, labels: tuple[Label, ...]
    ) -> tuple[Label, ...]:
        """Drop what the user marked "not a <label>" on this camera (rules/exceptions.py)."""
        exceptions = self._store.exceptions.of_camera(progress.camera.name)
        if not exceptions:
            return labels
        image = progress.snapshot.image if progress.snapshot else None
        assert image is not None
        labels, reasons, matched = drop_learned_exceptions(
            labels,
            exceptions,
            lambda box: region_fingerprint(image, box),
            progress.camera.filters.exceptions,
        )
        self._store.exceptions.matched(matched, progress.item.id, time.time())
        progress.filtered.extend(reasons)
        return labels

    def _suppressed(self, progress: _Progress, reason: str) -> str:
        log.info("Alert for %s suppressed: %s", progress.item.about, reason)
        self._errors.clear(progress.camera.name)
        return self._finish(progress, SUPPRESSED, reason)

    def _detected(self, item: QueuedItem, detection: Detection) -> None:
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

    def _notify(self, progress: _Progress) -> str:
        item, snapshot, decision = progress.item, progress.snapshot, progress.decision
        assert snapshot is not None and decision is not None
        upload, about = item.upload, item.about
        log.info(
            "DETECTED LABELS from %s: %s",
            about,
            ", ".join(f"{m.display_name} {m.label.confidence:.1f}%" for m in decision.matched),
        )
        annotated = draw_boxes(
            snapshot.image,
            decision.matched,
            self._config.rekognition_settings().image_resize_percent,
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
            clip=progress.clip_note,
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
            return self._failed(
                progress,
                "; ".join(retry_causes),
                transient=True,
                delivery=delivery_status(progress),
            )
        if failures:
            self._errors.report(upload.camera, "; ".join(failures), delivery_status(progress))
        else:
            self._errors.clear(upload.camera)
        self._metrics.alerts.labels(upload.camera).inc()
        reasons = [*failures, *progress.filtered]
        return self._finish(progress, ALERT, "; ".join(reasons) or None)

    def _finish(self, progress: _Progress, outcome: str, reason: str | None = None) -> str:
        """Record the event, close the queue item, and remove the upload if configured."""
        item = progress.item
        if progress.clip_note:
            reason = "; ".join(part for part in (progress.clip_note, reason) if part)
        if item.upload.burst_id:  # decided: the burst's alerting frames need not wait for it
            self._memory.remember_burst_frame(item.upload.burst_id, item.id, 0.0, replace=False)
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
                clip=progress.clip_file,
                clip_suffix=progress.clip_suffix,
            )
        )
        self._queue.finish(item.id, outcome, reason)
        self._metrics.outcomes.labels(item.upload.camera, outcome).inc()
        remove_upload(self._store.storage, item.upload)
        return outcome

    def failed_unexpectedly(self, item: QueuedItem, cause: str) -> str:
        """After an exception no stage expected (a bug): retried with backoff a few times, then
        recorded as an error event, with the error e-mail."""
        progress = _Progress(
            item, self._config.camera(item.upload.camera), detection=item.detection
        )
        return self._failed(progress, cause, transient=item.attempts + 1 < MAX_INTERNAL_ERRORS)

    def _failed(
        self, progress: _Progress, cause: str, *, transient: bool, delivery: str | None = None
    ) -> str:
        """Retry with backoff while it may help and the upload is not too old; else give up loudly.

        `delivery` says what worked when only some channels failed (for the error e-mail)."""
        retry = self._config.retry
        item = progress.item
        attempt = item.attempts + 1
        age_hours = (time.time() - item.upload.received_at.timestamp()) / 3600
        camera, about = item.upload.camera, item.about
        if transient and age_hours < retry.give_up_after_hours:
            delay = min(retry.first_delay_seconds * 2 ** (attempt - 1), retry.max_delay_seconds)
            log.warning(
                "%s (image from %s, attempt %d); retrying in %.0f s", cause, about, attempt, delay
            )
            self._queue.retry_later(item.id, cause, delay)
            if attempt == retry.error_email_after_attempts:
                self._errors.report(camera, cause, delivery)
            return RETRY
        log.error("Image processing error for %s: %s", about, cause)
        self._errors.report(camera, cause, delivery)
        return self._finish(progress, ERROR, cause)


def delivery_status(progress: _Progress) -> str:
    """`analysed (Person, Truck); email sent; apprise:tgram failed: connection refused`: what
    worked and what did not, for an error e-mail that does not cry "failed to process"."""
    decision = progress.decision
    names = ", ".join(dict.fromkeys(m.display_name for m in decision.matched)) if decision else ""
    steps = [f"analysed ({names})" if names else "analysed"]
    steps += [
        f"{outcome.notifier} sent" if outcome.ok else f"{outcome.notifier} failed: {outcome.detail}"
        for outcome in progress.notifications
    ]
    return "; ".join(steps)


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
