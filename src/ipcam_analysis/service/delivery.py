"""The notify step: an alert's picture drawn and encoded once for all its channels, then sent by
each of its camera's channels that has not sent it yet."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ipcam_analysis.imaging import draw_boxes, encode_jpeg
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify.base import Notifier
from ipcam_analysis.rules import matching_sensors
from ipcam_analysis.service.pipeline_settings import PipelineSettings
from ipcam_analysis.store.queue import QueuedItem, UploadQueue
from ipcam_analysis.values import Alert, Decision, NotifyOutcome, Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """What the channels did with one alert."""

    outcomes: tuple[NotifyOutcome, ...]  # one per channel, in order
    to_retry: tuple[str, ...]  # `channel: why` for failures that may pass
    failed: tuple[str, ...]  # `channel: why` for failures a retry would repeat


class Delivery:
    """Sends alerts through each camera's notifiers; a channel that sent is recorded at once."""

    def __init__(
        self,
        settings: PipelineSettings,
        notifiers: Mapping[str | None, Sequence[Notifier]],
        queue: UploadQueue,
        metrics: Metrics,
    ) -> None:
        """`notifiers` by camera; the None entry serves cameras no longer configured."""
        self._settings = settings
        self._notifiers = notifiers
        self._queue = queue
        self._metrics = metrics

    def alert(self, item: QueuedItem, snapshot: Snapshot, decision: Decision, clip: str) -> Alert:
        """The alert for a decision, with its boxed picture; `clip` says where in a clip the
        labels were seen."""
        annotated = draw_boxes(
            snapshot.image, decision.matched, self._settings.alert_resize_percent
        )
        upload = item.upload
        return Alert(
            camera=upload.camera,
            received_at=upload.received_at,
            matched=decision.matched,
            annotated_jpeg=encode_jpeg(annotated),
            image_size=annotated.size,
            original_name=upload.original_name,
            event_id=item.id,
            sensors=matching_sensors(decision.matched, self._settings.sensor_labels),
            clip=clip,
        )

    def send(self, alert: Alert, item: QueuedItem) -> Sent:
        """Through each channel of the alert's camera, but those an earlier attempt sent it by."""
        outcomes: list[NotifyOutcome] = []
        to_retry: list[str] = []
        failed: list[str] = []
        about = item.about
        for notifier in self._notifiers.get(alert.camera, self._notifiers[None]):
            if notifier.name in item.notified:
                outcomes.append(NotifyOutcome(notifier.name, True, "sent by an earlier attempt"))
                continue
            outcome = _send_safely(notifier, alert, about)
            outcomes.append(outcome)
            if outcome.ok:
                # At once: until this commits, a crash means this channel sends it again.
                self._queue.mark_notified(item.id, notifier.name)
                log.info("Alert for %s sent by %s %s", about, notifier.name, outcome.detail)
                continue
            self._metrics.notification_failures.labels(notifier.name).inc()
            if outcome.retry:
                to_retry.append(f"{notifier.name}: {outcome.detail}")
            else:
                log.error("Alert for %s not sent by %s: %s", about, notifier.name, outcome.detail)
                failed.append(f"{notifier.name}: {outcome.detail}")
        return Sent(tuple(outcomes), tuple(to_retry), tuple(failed))


def delivery_status(decision: Decision | None, notifications: Sequence[NotifyOutcome]) -> str:
    """`analysed (Person, Truck); email sent; apprise:tgram failed: connection refused`: what
    worked and what did not, for an error e-mail that does not cry "failed to process"."""
    names = ", ".join(dict.fromkeys(m.display_name for m in decision.matched)) if decision else ""
    steps = [f"analysed ({names})" if names else "analysed"]
    steps += [
        f"{outcome.notifier} sent" if outcome.ok else f"{outcome.notifier} failed: {outcome.detail}"
        for outcome in notifications
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
