"""One motion, one alert (rules/motion.py): which uploads of a camera show a clip's motion, and
which a clip waits for."""

from __future__ import annotations

from ipcam_analysis.rules.motion import (
    alerted_by_clips,
    alerted_by_snapshots,
    still_to_decide,
)
from ipcam_analysis.values import CameraUpload

CLIP_RECEIVED = 1_000.0  # a 30 s clip, uploaded once recorded: its motion began at 970


def upload(
    id: int,
    received: float,
    *,
    alerted: str = "",
    clip_seconds: float | None = None,
    undecided: bool = False,
    failed_before: bool = False,
) -> CameraUpload:
    labels = frozenset(alerted.split()) if alerted else frozenset()
    return CameraUpload(id, received, undecided, failed_before, labels, clip_seconds)


def test_a_clip_defers_to_the_snapshots_of_its_motion_only() -> None:
    others = [
        upload(1, 955.0, alerted="person"),  # 15 s before the motion: another one
        upload(2, 962.0, alerted="car"),  # at the motion's start, a little early
        upload(3, 975.0, alerted="person dog"),
        upload(4, 990.0, alerted="person", clip_seconds=8.0),  # a clip: not a snapshot
        upload(5, 1_008.0, alerted="cat"),  # sent just after the clip
    ]

    assert alerted_by_snapshots(others, CLIP_RECEIVED, 30.0) == {
        "car": 2,
        "person": 3,
        "dog": 3,
        "cat": 5,
    }


def test_a_snapshot_defers_to_a_clip_that_shows_its_motion() -> None:
    clips = [
        upload(7, CLIP_RECEIVED, alerted="person", clip_seconds=30.0),
        upload(8, 1_100.0, alerted="dog", clip_seconds=30.0),  # its motion began at 1 070
        upload(9, 1_002.0, alerted="cat"),  # a snapshot: not a clip
    ]

    assert alerted_by_clips(clips, 975.0) == {"person": 7}
    assert alerted_by_clips(clips, 1_050.0) == {}  # after the first clip, before the second


def test_a_clip_waits_for_what_the_camera_sent_before_it_unless_that_is_failing() -> None:
    others = [
        upload(3, 975.0, undecided=True, failed_before=True),  # the cloud is down for it
        upload(4, 980.0, alerted="person"),  # decided
        upload(6, 985.0, undecided=True),  # being analysed
        upload(9, 1_001.0, undecided=True),  # queued after the clip: it waits for the clip
    ]

    waited_for = still_to_decide(others, item_id=8)
    assert waited_for is not None and waited_for.id == 6
    assert still_to_decide(others[:2], item_id=8) is None
