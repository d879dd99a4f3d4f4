"""One motion, one alert: a camera told to record on motion sends a snapshot at once and the clip
once it is recorded, and the owner hears of the motion once. Pure: the queue hands over the
camera's uploads around the one being decided."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ipcam_analysis.values import CameraUpload, MatchedLabel

# A snapshot received this long before a clip began (its length before its upload), or this long
# after the clip, still shows the clip's motion: cameras differ in which they send first, and
# uploads are late by a few seconds.
SAME_MOTION_SLACK_SECONDS = 10.0
# How far back a clip looks for uploads of its camera still to be decided, before its own
# length is known (a clip is only analysed once they are).
LONGEST_CLIP_SECONDS = 600.0


def still_to_decide(others: Sequence[CameraUpload], item_id: int) -> CameraUpload | None:
    """The earliest upload that the one being decided (a clip, or a snapshot after a clip)
    waits for: one queued before it, being decided now or soon. A failing one (a cloud outage)
    is not waited for: the later of the two defers to it when it alerts."""
    waiting = [
        upload
        for upload in others
        if upload.id < item_id and upload.undecided and not upload.failed_before
    ]
    return min(waiting, key=lambda upload: upload.id, default=None)


def clip_window(received: float, clip_seconds: float) -> tuple[float, float]:
    """When the uploads of a clip's motion are received (epoch seconds, both ends included)."""
    start = received - clip_seconds - SAME_MOTION_SLACK_SECONDS
    return start, received + SAME_MOTION_SLACK_SECONDS


def alerted_by_snapshots(
    others: Sequence[CameraUpload], received: float, clip_seconds: float
) -> dict[str, int]:
    """For a clip: the labels a snapshot of its motion alerted on, with that snapshot's id."""
    start, end = clip_window(received, clip_seconds)
    return _first_by_label(
        upload
        for upload in others
        if upload.clip_seconds is None and start <= upload.received <= end
    )


def alerted_by_clips(others: Sequence[CameraUpload], received: float) -> dict[str, int]:
    """For a snapshot: the labels a clip whose motion it shows alerted on, with the clip's id."""

    def shows_the_motion_of(upload: CameraUpload) -> bool:
        if upload.clip_seconds is None:
            return False
        start, end = clip_window(upload.received, upload.clip_seconds)
        return start <= received <= end

    return _first_by_label(filter(shows_the_motion_of, others))


def drop_alerted_with(
    matched: Sequence[MatchedLabel], alerted: dict[str, int], by: str
) -> tuple[tuple[MatchedLabel, ...], list[str]]:
    """Drop the labels another upload of the same motion alerted on (`alerted`: its id by
    case-folded label name); `by` says what it was: "snapshot" or "clip"."""
    kept, reasons = [], []
    for match in matched:
        event_id = alerted.get(match.label.name.casefold())
        if event_id is None:
            kept.append(match)
        else:
            reasons.append(f"{match.display_name} already alerted by the {by} of event {event_id}")
    return tuple(kept), reasons


def _first_by_label(uploads: Iterable[CameraUpload]) -> dict[str, int]:
    by_label: dict[str, int] = {}
    for upload in sorted(uploads, key=lambda upload: upload.id):
        for name in upload.alerted:
            by_label.setdefault(name, upload.id)
    return by_label
