"""One queued upload through the stages: validate → window → detect → decide → notify → record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from ipcam_analysis.annotate import draw_boxes, encode_jpeg
from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import Detector, DetectorError
from ipcam_analysis.imaging import CorruptImageError, NotAnImageError, decode_snapshot
from ipcam_analysis.models import Alert, Decision, Detection, Snapshot, Upload
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.queue import QueuedItem, UploadQueue
from ipcam_analysis.rules import decide, describe_labels

log = logging.getLogger(__name__)

# Outcomes recorded for each upload.
ALERT, NO_MATCH, OUTSIDE_WINDOW = "alert", "no_match", "outside_window"
NOT_IMAGE, CORRUPT, MISSING, ERROR = "not_image", "corrupt", "missing", "error"
RETRY = "retry"  # not final: the item is back in the queue


class Pipeline:
    """Processes one item at a time per worker; all state lives in the queue's database."""

    def __init__(
        self,
        config: AppConfig,
        queue: UploadQueue,
        notifiers: Sequence[Notifier],
        errors: ErrorReporter,
        remove_upload: Callable[[Upload], None] | None = None,
    ) -> None:
        self._config = config
        self._queue = queue
        self._notifiers = notifiers
        self._errors = errors
        self._remove_upload = remove_upload

    def process(self, item: QueuedItem, detector: Detector) -> str:
        """Take the item to a final outcome, or back to the queue for a retry; returns which."""
        upload = item.upload
        log.info("Processing image %s from %s", upload.original_name, upload.camera)
        try:
            snapshot = decode_snapshot(upload.path.read_bytes())
        except FileNotFoundError:
            log.warning(
                "Upload %s from %s is gone before it was analysed",
                upload.original_name,
                upload.camera,
            )
            return self._finish(item, MISSING)
        except NotAnImageError as exc:
            # The camera's FTP "Test" button uploads a small non-image file: not an error.
            log.info(
                "Connection test or non-image upload from %s: %s (%s)",
                upload.camera,
                upload.original_name,
                exc,
            )
            return self._finish(item, NOT_IMAGE)
        except CorruptImageError as exc:
            log.warning("Damaged image from %s: %s (%s)", upload.camera, upload.original_name, exc)
            return self._finish(item, CORRUPT)
        except OSError as exc:
            return self._failed(item, f"cannot read the upload ({exc})", transient=True)

        window = self._config.time_window
        if window and not window.contains(upload.received_at.time()):
            log.info("Image ignored. Not in time window %s.", window.describe())
            return self._finish(item, OUTSIDE_WINDOW)

        detection = item.detection
        if detection is None:
            try:
                detection = detector.detect(snapshot)
            except DetectorError as exc:
                return self._failed(item, str(exc), transient=exc.transient)
            self._queue.save_detection(item.id, detection)
            log.info(
                "%s answered in %.0f ms: %s",
                detection.detector,
                detection.elapsed_ms,
                describe_labels(detection.labels),
            )

        decision = decide(detection.labels, self._config.labels, self._config.new_labels_only)
        if not decision.alert:
            log.info("Nothing of interest from %s", upload.camera)
            self._errors.clear(upload.camera)
            return self._finish(item, NO_MATCH)
        return self._notify(item, snapshot, detection, decision)

    def _notify(
        self, item: QueuedItem, snapshot: Snapshot, detection: Detection, decision: Decision
    ) -> str:
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
        for notifier in self._notifiers:
            if notifier.name in item.notified:
                continue  # delivered by an earlier attempt
            outcome = notifier.send(alert)
            if outcome.ok:
                self._queue.mark_notified(item.id, notifier.name)
                log.info("Alert for %s sent by %s %s", upload.camera, notifier.name, outcome.detail)
            elif outcome.retry:
                retry_causes.append(f"{notifier.name}: {outcome.detail}")
            else:
                log.error(
                    "Alert for %s not sent by %s: %s", upload.camera, notifier.name, outcome.detail
                )
                failures.append(f"{notifier.name}: {outcome.detail}")
        if retry_causes:
            return self._failed(item, "; ".join(retry_causes), transient=True)
        if failures:
            self._errors.report(upload.camera, "; ".join(failures))
        else:
            self._errors.clear(upload.camera)
        return self._finish(item, ALERT, "; ".join(failures) or None)

    def _finish(self, item: QueuedItem, outcome: str, error: str | None = None) -> str:
        self._queue.finish(item.id, outcome, error)
        if self._remove_upload is not None:
            self._remove_upload(item.upload)
        return outcome

    def _failed(self, item: QueuedItem, cause: str, *, transient: bool) -> str:
        """Retry with backoff while it may help and the upload is not too old; else give up loudly."""
        retry = self._config.retry
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
        return self._finish(item, ERROR, cause)
