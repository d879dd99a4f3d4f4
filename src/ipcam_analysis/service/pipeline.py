"""One queued upload through the stages: validate → window → detect (service/detection.py) →
decide (a burst as one, then the repeats) → notify (service/delivery.py) → record, with the
pictures drawn here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field, replace
from functools import partial

from ipcam_analysis.detect import Detector, DetectorError
from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    event_pictures,
)
from ipcam_analysis.imaging.clips import CLIP_SUFFIXES, clip_format
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.rules import decide, filter_labels, why_not_alerted
from ipcam_analysis.rules.bursts import DECIDES, confirmed_in_burst
from ipcam_analysis.rules.camera import CameraSettings
from ipcam_analysis.rules.windows import describe_time_windows, in_time_windows
from ipcam_analysis.service.decisions import CameraDecisions, camera_key
from ipcam_analysis.service.delivery import Delivery, delivery_status
from ipcam_analysis.service.detection import Detecting, NotAnalysed
from ipcam_analysis.service.pending_writes import PendingWrites
from ipcam_analysis.service.pipeline_settings import PipelineSettings
from ipcam_analysis.store import STORAGE_ERRORS, CameraHistory, EventRecord, EventStore
from ipcam_analysis.store.events import KeptPictures
from ipcam_analysis.store.queue import QueuedItem, UploadQueue
from ipcam_analysis.store.uploads import read_upload, remove_upload
from ipcam_analysis.values import (
    ALERT,
    CORRUPT,
    ERROR,
    MISSING,
    NO_MATCH,
    NOT_IMAGE,
    OUTSIDE_WINDOW,
    RETRY,
    SUPPRESSED,
    Decision,
    Detection,
    EventPictures,
    NotifyOutcome,
    Snapshot,
)

log = logging.getLogger(__name__)

BURST_POLL_SECONDS = 1.0  # how often a frame waiting for its burst's other frames looks again

# An upload that hits an unexpected exception (a bug) is retried this often, then recorded as
# an error event.
MAX_INTERNAL_ERRORS = 3
# The reason of a picture with no label left to decide on: the API says what the dashboard says.
NOTHING_FOUND = "nothing found"


@dataclass
class _Progress:
    """What one attempt has learned so far; it becomes the event when the upload is finished."""

    item: QueuedItem
    camera: CameraSettings
    pending: PendingWrites  # what this attempt owes the database
    file_size: int | None = None
    snapshot: Snapshot | None = None
    detection: Detection | None = None  # each object under one name
    decision: Decision | None = None
    notifications: list[NotifyOutcome] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)  # why labels or objects were dropped
    clip_note: str = ""  # for a video clip: what was seen where in it
    clip_file: bytes | None = None  # kept with the event
    clip_suffix: str = ""
    clip_seconds: float = 0.0
    pictures: EventPictures | None = None  # drawn before an alert is sent
    kept: KeptPictures | None = None  # their files, kept before an alert is sent


class Pipeline:
    """Processes one item at a time per worker; all state lives in the database."""

    def __init__(
        self,
        settings: PipelineSettings,
        queue: UploadQueue,
        store: EventStore,
        memory: CameraHistory,
        metrics: Metrics,
        notifiers: Mapping[str | None, Sequence[Notifier]],
        errors: ErrorReporter,
    ) -> None:
        """`notifiers` by camera; the None entry serves cameras no longer configured."""
        self._settings = settings
        self._queue = queue
        self._store = store
        self._memory = memory
        self._decisions = CameraDecisions(memory, store, queue, settings.budget, errors.notice)
        self._detecting = Detecting(self._decisions, queue, metrics)
        self._delivery = Delivery(settings, notifiers, queue, metrics)
        self._metrics = metrics
        self._errors = errors

    def process(self, item: QueuedItem, detectors: Callable[[str], Detector]) -> str:
        """Take the item to a final outcome, or back to the queue for a retry; returns which.

        `detectors(kind)` gives this worker's detector of a kind."""
        camera = self._settings.camera(item.upload.camera)
        pending = PendingWrites(self._memory)
        progress = _Progress(item, camera, pending, detection=item.detection)
        try:
            return self._stages(progress, detectors)
        except Exception:
            # What the attempt achieved (its detection, the channels that sent) stays achieved
            # for the next one, whatever failed after it.
            with suppress(*STORAGE_ERRORS):
                pending.commit()
            raise

    def _stages(self, progress: _Progress, detectors: Callable[[str], Detector]) -> str:
        item, camera = progress.item, progress.camera
        upload, about = item.upload, item.about
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
        if item.decision is not None:  # decided by an earlier attempt; only alerting is left
            progress.decision = item.decision
            progress.filtered.extend(item.filtered)
            return self._notify(progress)
        return self._decide(progress)

    def _detect(self, progress: _Progress, detectors: Callable[[str], Detector]) -> str | None:
        """The picture through the detect step; None when there is a detection to decide on."""
        assert progress.snapshot is not None
        try:
            found = self._detecting.picture(
                progress.item, progress.camera, progress.snapshot, detectors, progress.pending
            )
        except DetectorError as exc:
            return self._failed(progress, str(exc), transient=exc.transient)
        if isinstance(found, NotAnalysed):
            return self._finish(progress, found.outcome, found.reason)
        progress.detection = found
        return None

    def _analyse_clip(
        self,
        progress: _Progress,
        data: bytes,
        container: str,
        detectors: Callable[[str], Detector],
    ) -> str | None:
        """The clip through the detect step, once the uploads its camera sent before it are
        decided (one motion, one alert); None when its best frame is ready to decide on."""
        item = progress.item
        earlier = None if item.decision else self._decisions.clip_waits_for(item.upload, item.id)
        if earlier is not None:
            return self._held(
                progress, f"waiting for event {earlier.id} of the camera to be decided first"
            )
        try:
            clip = self._detecting.clip(
                progress.item, progress.camera, data, container, detectors, progress.pending
            )
        except DetectorError as exc:
            return self._failed(progress, str(exc), transient=exc.transient)
        if isinstance(clip, NotAnalysed):
            return self._finish(progress, clip.outcome, clip.reason)
        progress.snapshot, progress.detection = clip.snapshot, clip.detection
        progress.clip_note, progress.clip_seconds = clip.describe(), clip.duration_seconds
        progress.clip_file, progress.clip_suffix = data, CLIP_SUFFIXES[container]
        return None

    def _decide(self, progress: _Progress) -> str:
        """Filters, then the rule; a weak single picture waits for the camera's next one to
        confirm it; then the camera's history has its say."""
        item, camera, detection = progress.item, progress.camera, progress.detection
        assert detection is not None
        labels, dropped = filter_labels(
            detection.labels, camera.filters, camera.min_confidence_percent
        )
        image = progress.snapshot.image if progress.snapshot else None
        labels, unlearned, matched = self._decisions.drop_learned_exceptions(camera, labels, image)
        if matched:  # counted with the attempt's next transaction
            counted = partial(self._store.exceptions.matched, matched, item.id, time.time())
            progress.pending.add(counted)
        progress.filtered.extend([*dropped, *unlearned])
        decision = decide(labels, camera.labels, camera.new_labels_only)
        if not item.upload.burst_id and camera.filters.confirm.wait_seconds:
            decision, reasons, wait = self._decisions.confirmed_by_next_picture(
                camera, item.id, decision, time.time()
            )
            if wait:
                return self._held(
                    progress, "waiting for the camera's next picture to confirm a weak detection"
                )
            progress.filtered.extend(reasons)
        progress.decision = decision
        if not decision.alert:
            log.info("Nothing of interest from %s", item.about)
            self._errors.clear(camera.name)
            unwatched = why_not_alerted(decision, camera.new_labels_only)
            reasons = [*progress.filtered, *([unwatched] if unwatched else [])]
            return self._finish(progress, NO_MATCH, "; ".join(reasons) or NOTHING_FOUND)
        clip = (
            None if progress.clip_file else self._decisions.snapshot_waits_for(item.upload, item.id)
        )
        if clip is not None:  # its detection is kept: the next attempt only decides
            return self._held(progress, f"waiting for the clip of event {clip.id} first")
        return self._decide_with_history(progress, decision)

    def _decide_with_history(self, progress: _Progress, decision: Decision) -> str:
        """An alerting decision against the camera's history: a burst's frames wait for each
        other and its strongest decides for it; then the repeats (stationary objects,
        cooldown), decided and remembered with the decision in one transaction."""
        item, camera = progress.item, progress.camera
        upload = item.upload
        # Without a burst or a filter that remembers alerts, nothing is read or remembered here:
        # no transaction of its own; the decision is saved with the attempt's next one.
        remembers = bool(upload.burst_id) or camera.filters.remembers_alerts
        pending = progress.pending
        with pending.committing(camera_key(camera.name)) if remembers else nullcontext():
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
                clip_seconds = progress.clip_seconds if progress.clip_file is not None else None
                matched, reasons = self._decisions.drop_alerted_by_same_motion(
                    upload, item.id, clip_seconds, matched
                )
                progress.filtered.extend(reasons)
                matched, reasons = self._decisions.drop_repeats(camera, matched, now)
                progress.filtered.extend(reasons)
                decision = replace(decision, alert=bool(matched), matched=matched)
                if upload.burst_id:
                    self._decisions.burst_decided(upload, item.id, alerted=decision.alert)
                if decision.alert:
                    saved = partial(self._queue.save_decision, item.id, decision)
                    pending.add(partial(saved, list(progress.filtered), clip_seconds))
        if turn.wait:
            return self._held(progress, "waiting for the other pictures of the same e-mail")
        progress.decision = decision if turn.decides else replace(decision, alert=False)
        if not turn.decides:
            return self._suppressed(progress, turn.reason)
        if not decision.alert:
            return self._suppressed(progress, "; ".join(progress.filtered))
        return self._notify(progress)

    def _held(self, progress: _Progress, why: str) -> str:
        """Back to the queue for a moment, to wait for other pictures (no attempt counted)."""
        with progress.pending.committing():
            self._queue.hold(progress.item.id, why, BURST_POLL_SECONDS)
        return RETRY

    def _suppressed(self, progress: _Progress, reason: str) -> str:
        log.info("Alert for %s suppressed: %s", progress.item.about, reason)
        self._errors.clear(progress.camera.name)
        return self._finish(progress, SUPPRESSED, reason)

    def _notify(self, progress: _Progress) -> str:
        """Send the alert by each channel; a channel that may work later retries the upload
        (the others are not sent it again)."""
        item, snapshot, decision = progress.item, progress.snapshot, progress.decision
        assert snapshot is not None and decision is not None
        camera = item.upload.camera
        log.info(
            "DETECTED LABELS from %s: %s",
            item.about,
            ", ".join(f"{m.display_name} {m.label.confidence:.1f}%" for m in decision.matched),
        )
        alert = self._delivery.alert(item, snapshot, decision, progress.clip_note)
        # Before sending: after the last channel, only the event's commit is left (a crash in
        # between sends that channel again).
        progress.pictures = event_pictures(snapshot)
        progress.kept = self._store.keep_pictures(
            item.id, item.upload, progress.pictures, progress.clip_file, progress.clip_suffix
        )
        sent = self._delivery.send(alert, item, progress.pending)
        progress.notifications.extend(sent.outcomes)
        status = delivery_status(decision, progress.notifications)
        if sent.to_retry:
            return self._failed(progress, "; ".join(sent.to_retry), transient=True, delivery=status)
        if sent.failed:
            self._errors.report(camera, "; ".join(sent.failed), status)
        else:
            self._errors.clear(camera)
        self._metrics.alerts.labels(camera).inc()
        reasons = [*sent.failed, *progress.filtered]
        return self._finish(progress, ALERT, "; ".join(reasons) or None)

    def _finish(self, progress: _Progress, outcome: str, reason: str | None = None) -> str:
        """Record the event with its pictures, close the queue item, and remove the upload if
        configured."""
        item = progress.item
        if progress.clip_note:
            reason = "; ".join(part for part in (progress.clip_note, reason) if part)

        def close_item() -> None:
            if item.upload.burst_id:  # decided: the burst's alerting frames need not wait for it
                self._memory.remember_burst_frame(item.upload.burst_id, item.id, 0.0, replace=False)
            self._queue.finish(item.id, outcome, reason)
            progress.pending.make()

        pictures = progress.pictures
        if pictures is None and progress.snapshot is not None:
            pictures = event_pictures(progress.snapshot)
        self._store.record(
            EventRecord(
                item_id=item.id,
                upload=item.upload,
                outcome=outcome,
                reason=reason,
                file_size=progress.file_size,
                pictures=pictures,
                detection=progress.detection,
                decision=progress.decision,
                notifications=tuple(progress.notifications),
                clip=progress.clip_file,
                clip_suffix=progress.clip_suffix,
            ),
            progress.kept,
            also=close_item,
        )
        progress.pending.forget()
        self._metrics.outcomes.labels(item.upload.camera, outcome).inc()
        remove_upload(self._store.storage, item.upload)
        return outcome

    def failed_unexpectedly(self, item: QueuedItem, cause: str) -> str:
        """After an exception no stage expected (a bug): retried with backoff a few times, then
        recorded as an error event, with the error e-mail."""
        camera = self._settings.camera(item.upload.camera)
        progress = _Progress(item, camera, PendingWrites(self._memory), detection=item.detection)
        return self._failed(progress, cause, transient=item.attempts + 1 < MAX_INTERNAL_ERRORS)

    def _failed(
        self, progress: _Progress, cause: str, *, transient: bool, delivery: str | None = None
    ) -> str:
        """Retry with backoff while it may help and the upload is not too old; else give up loudly.

        `delivery` says what worked when only some channels failed (for the error e-mail)."""
        retry = self._settings.retry
        item = progress.item
        attempt = item.attempts + 1
        age_hours = (time.time() - item.upload.received_at.timestamp()) / 3600
        camera, about = item.upload.camera, item.about
        if transient and age_hours < retry.give_up_after_hours:
            delay = retry.delay_seconds(attempt)
            log.warning(
                "%s (image from %s, attempt %d); retrying in %.0f s", cause, about, attempt, delay
            )
            with progress.pending.committing():
                self._queue.retry_later(item.id, cause, delay)
            if attempt == retry.error_email_after_attempts:
                self._errors.report(camera, cause, delivery)
            return RETRY
        log.error("Image processing error for %s: %s", about, cause)
        self._errors.report(camera, cause, delivery)
        return self._finish(progress, ERROR, cause)
