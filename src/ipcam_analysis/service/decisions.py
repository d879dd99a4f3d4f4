"""What a camera's history says about one upload: a repeated frame, the cloud budget, a stronger
picture of the same e-mail, objects still there, labels in cooldown. Each is read, decided (by
the pure rules) and remembered in one database transaction, so that with many worker threads,
processes or machines a camera's decisions are the ones it would get one upload at a time, and
a budget is never overspent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from PIL import Image

from ipcam_analysis.detect import PAID_KINDS, Detector
from ipcam_analysis.imaging import hash_distance, region_fingerprint
from ipcam_analysis.rules import BudgetConfig, drop_learned_exceptions
from ipcam_analysis.rules.budget import budget_level, budget_notice, capped, limits_for
from ipcam_analysis.rules.bursts import (
    BurstTurn,
    burst_turn,
    confirmed_by_next_picture,
    matched_names,
)
from ipcam_analysis.rules.camera import CameraSettings
from ipcam_analysis.rules.motion import (
    LONGEST_CLIP_SECONDS,
    SAME_MOTION_SLACK_SECONDS,
    alerted_by_clips,
    alerted_by_snapshots,
    clip_window,
    drop_alerted_with,
    still_to_decide,
)
from ipcam_analysis.rules.repeats import (
    drop_cooling_down,
    drop_stationary,
    object_kind,
)
from ipcam_analysis.store import CameraHistory, EventStore
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import (
    CameraUpload,
    Decision,
    Detection,
    Label,
    MatchedLabel,
    Snapshot,
    Upload,
)

log = logging.getLogger(__name__)


class CameraDecisions:
    """The remembering rules, each one atomic over the shared database."""

    def __init__(
        self,
        memory: CameraHistory,
        events: EventStore,
        queue: UploadQueue,
        budget: BudgetConfig,
        notice: Callable[[str], None],
    ) -> None:
        """`notice(text)` tells the owner something once (a budget warning)."""
        self._memory = memory
        self._queue = queue
        self._events = events
        self._budget = budget
        self._notice = notice

    def drop_learned_exceptions(
        self, camera: CameraSettings, labels: tuple[Label, ...], image: Image.Image | None
    ) -> tuple[tuple[Label, ...], tuple[str, ...], frozenset[int]]:
        """Drop what the user marked "not a <label>" on this camera (rules/exceptions.py): the
        labels left, why the others went, and the exceptions that matched (to be counted)."""
        exceptions = self._events.exceptions.of_camera(camera.name)
        if not exceptions:
            return labels, (), frozenset()
        assert image is not None
        return drop_learned_exceptions(
            labels,
            exceptions,
            lambda box: region_fingerprint(image, box),
            camera.filters.exceptions,
        )

    def clip_waits_for(self, upload: Upload, item_id: int) -> CameraUpload | None:
        """An upload the camera sent before this clip and still to be decided: the clip is
        analysed after it, so that it sees a snapshot of its motion alert (one motion, one
        alert)."""
        received = upload.received_at.timestamp()
        others = self._queue.undecided_uploads(
            upload,
            item_id,
            received - LONGEST_CLIP_SECONDS - SAME_MOTION_SLACK_SECONDS,
            received + SAME_MOTION_SLACK_SECONDS,
        )
        return still_to_decide(others, item_id)

    def snapshot_waits_for(self, upload: Upload, item_id: int) -> CameraUpload | None:
        """A clip the camera sent just before this snapshot, still to be decided: the snapshot
        shows its motion and is decided after it (one motion, one alert)."""
        received = upload.received_at.timestamp()
        others = self._queue.undecided_uploads(
            upload, item_id, received - SAME_MOTION_SLACK_SECONDS, received, clips_only=True
        )
        return still_to_decide(others, item_id)

    def drop_alerted_by_same_motion(
        self,
        upload: Upload,
        item_id: int,
        clip_seconds: float | None,
        matched: tuple[MatchedLabel, ...],
    ) -> tuple[tuple[MatchedLabel, ...], list[str]]:
        """The labels that another upload of the same motion alerted on are not alerted again:
        for a clip (`clip_seconds` its length), a snapshot of its motion; for a snapshot
        (None), a clip that shows its motion."""
        received = upload.received_at.timestamp()
        if clip_seconds is None:
            start = received - SAME_MOTION_SLACK_SECONDS
            end = received + LONGEST_CLIP_SECONDS + SAME_MOTION_SLACK_SECONDS
            others = self._queue.alerted_uploads(upload.camera, item_id, start, end, clips=True)
            return drop_alerted_with(matched, alerted_by_clips(others, received), "clip")
        start, end = clip_window(received, clip_seconds)
        others = self._queue.alerted_uploads(upload.camera, item_id, start, end, clips=False)
        by_snapshots = alerted_by_snapshots(others, received, clip_seconds)
        return drop_alerted_with(matched, by_snapshots, "snapshot")

    def repeated_frame(
        self, camera: CameraSettings, item_id: int, frame_hash: int, now: float
    ) -> int | None:
        """The distance to the camera's previous frame when this one repeats it (then it is not
        analysed); otherwise None, and this frame becomes the one the next is compared to."""
        max_distance = camera.filters.duplicate_hash_distance
        with self._memory.atomically(camera_key(camera.name)):
            last = self._memory.last_frame(camera.name)
            # A retried upload is not a repeat of itself.
            if last is not None and last[1] != item_id:
                distance = hash_distance(last[0], frame_hash)
                if max_distance and distance <= max_distance:
                    return distance
            self._memory.remember_frame(camera.name, frame_hash, item_id, now)
        return None

    def reserve_cloud_call(self, camera: CameraSettings, now: float) -> bool:
        """Counts one paid call against every cap before it is made, if all allow it; each
        warning is sent once per period."""
        notices: list[str] = []
        with self._memory.atomically(BUDGET_KEY):
            allowed = True
            for limit in limits_for(camera.name, self._budget, camera.budget, now):
                used = self._memory.cloud_calls(limit.period, limit.camera)
                level = budget_level(used, limit, self._budget.warn_percent)
                allowed = allowed and level != "exhausted"
                if level and self._memory.first_budget_notice(limit.period, limit.scope, level):
                    notices.append(budget_notice(used, limit, level, self._budget.on_exhausted))
            if allowed:
                self._memory.count_cloud_calls(_day(now), camera.name, 1)
        for text in notices:
            self._notice(text)
        return allowed

    def has_budget(self, camera: CameraSettings) -> bool:
        """Whether a cap applies to the camera's paid calls: then each is reserved first."""
        return capped(self._budget, camera.budget)

    def paid_calls(self, camera: CameraSettings) -> PaidCalls:
        """One upload's detector calls, paid ones reserved from the budget."""
        return PaidCalls(self, camera, self._budget.on_exhausted)

    def settle_cloud_calls(self, camera: str, reserved: int, made: int, now: float) -> None:
        """The calls made replace the reservation (a cascade that did not ask the cloud gives
        its call back); the day's totals go to the log, so spend shows without the dashboard."""
        if made != reserved:
            self._memory.count_cloud_calls(_day(now), camera, made - reserved)
        if made:
            self._log_totals(camera, self._memory.calls_today(_day(now)))

    def _log_totals(self, camera: str, today: dict[str, int]) -> None:
        cap = self._budget.daily_calls
        log.info(
            "Cloud calls today: %d%s (%s: %d)",
            sum(today.values()),
            f" of {cap}" if cap is not None else "",
            camera,
            today.get(camera, 0),
        )

    def drop_repeats(
        self, camera: CameraSettings, matched: tuple[MatchedLabel, ...], now: float
    ) -> tuple[tuple[MatchedLabel, ...], list[str]]:
        """Drop objects still where they were alerted and labels in cooldown, and remember what
        is left as alerted. Call inside `CameraHistory.atomically(camera_key(...))` together with saving the
        decision, so that a crash keeps both or neither."""
        reasons: list[str] = []
        stationary = camera.filters.stationary
        if stationary.enabled:
            remembered = self._memory.remembered_objects(
                camera.name, now - stationary.forget_after_minutes * 60
            )
            matched, dropped, seen_again = drop_stationary(matched, remembered, stationary)
            self._memory.objects_seen_again(seen_again, now)
            reasons += dropped
        if camera.filters.cooldown_seconds:
            last_alerts = self._memory.last_alerts(camera.name)
            matched, dropped = drop_cooling_down(
                matched, last_alerts, camera.filters.cooldown_seconds, now
            )
            reasons += dropped
        # Only what an enabled filter reads: every write takes SQLite's one writer.
        if matched and camera.filters.cooldown_seconds:
            self._memory.remember_alert(camera.name, matched, now)
        if matched and stationary.enabled:
            boxes = [(object_kind(m.label), i.box) for m in matched for i in m.label.instances]
            self._memory.remember_objects(camera.name, boxes, now)
        return matched, reasons

    def burst_turn(self, upload: Upload, item_id: int, decision: Decision, now: float) -> BurstTurn:
        """An alerting frame of a burst (the pictures of one e-mail), before the repeats: wait
        until the burst's other frames are decided; then the strongest decides for the burst,
        and the others name it. Call inside `CameraHistory.atomically(camera_key(...))`, with
        drop_repeats and burst_decided when this frame decides."""
        assert upload.burst_id is not None
        strength = max(match.label.confidence for match in decision.matched)
        self._memory.remember_burst_frame(
            upload.burst_id,
            item_id,
            strength,
            replace=True,
            labels=matched_names(decision.matched),
        )
        # Waited from the first decision, not the e-mail's arrival: a backlog is no reason.
        frames, first_decided = self._memory.burst_frames(upload.burst_id)
        return burst_turn(item_id, frames, upload.burst_size, now - first_decided)

    def confirmed_by_next_picture(
        self, camera: CameraSettings, item_id: int, decision: Decision, now: float
    ) -> tuple[Decision, list[str], bool]:
        """A single picture (not a burst) with weak objects waits for the camera's next picture
        to see them too (filters.confirm): the decision, why objects were dropped, and whether
        to wait. Every picture remembers what it matched, for the one before it."""
        confirm = camera.filters.confirm
        seen = matched_names(decision.matched)
        keep_seconds = max(confirm.wait_seconds * 4, SIGHTINGS_KEPT_SECONDS)
        first = self._memory.remember_sighting(camera.name, item_id, seen, now, keep_seconds)
        if not decision.alert:
            return decision, [], False
        next_saw = self._memory.next_sighting(camera.name, item_id)
        matched, reasons, wait = confirmed_by_next_picture(
            decision.matched, next_saw, now - first, confirm
        )
        return replace(decision, alert=bool(matched), matched=matched), reasons, wait

    def burst_decided(self, upload: Upload, item_id: int, *, alerted: bool) -> None:
        """This frame decided for its burst: the others name it."""
        assert upload.burst_id is not None
        self._memory.remember_burst_verdict(upload.burst_id, item_id, alerted=alerted)


class PaidCalls:
    """One upload's detector calls (a picture's one, a clip's frames): each paid call reserved
    from the budget before it is made, all settled once with the calls really made."""

    def __init__(
        self, decisions: CameraDecisions, camera: CameraSettings, on_exhausted: str
    ) -> None:
        """`on_exhausted`: the kind that answers once the budget is spent, or "none"."""
        self._decisions = decisions
        self._camera = camera
        self._on_exhausted = on_exhausted
        self._kind = camera.detector
        self._reserved = 0
        self._made = 0

    def detect(
        self, detectors: Callable[[str], Detector], snapshot: Snapshot, now: float
    ) -> Detection | None:
        """The camera's detector on the picture, or the budget's fallback once the budget is
        spent; None when the budget allows no call at all. `detectors(kind)` gives one."""
        # Without a cap, nothing is reserved: the calls are counted as they are settled.
        if self._kind in PAID_KINDS and self._decisions.has_budget(self._camera):
            if self._decisions.reserve_cloud_call(self._camera, now):
                self._reserved += 1
            elif self._on_exhausted == "none":
                return None
            else:
                self._kind = self._on_exhausted
        detection = detectors(self._kind).detect(snapshot, self._camera.watched)
        self._made += detection.cloud_calls
        return detection

    def settle(self, now: float) -> None:
        """The calls made replace the reservations: a failed call, or a cascade that did not
        ask the cloud, is not paid for."""
        self._decisions.settle_cloud_calls(self._camera.name, self._reserved, self._made, now)


SIGHTINGS_KEPT_SECONDS = 3600.0  # what single pictures matched, for a late one before them
BUDGET_KEY = "budget"  # every cap is decided under one lock: a camera's and the total


def camera_key(camera: str) -> str:
    """What decisions about one camera lock (see CameraHistory.atomically)."""
    return f"camera {camera}"


def _day(now: float) -> str:
    return datetime.fromtimestamp(now).strftime("%Y-%m-%d")
