"""SIGKILL at every step of an upload's way, placed by the real parts' own delays (a slow cloud,
a mail server holding its reply, the database's write lock held by another program, a snapshot
file that blocks): after the restart nothing is lost, nothing is analysed twice once saved, and
a copy sent again carries the same Message-ID."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

import pytest

from harness.backends import write_lock_held
from harness.crash import PERSON_JPEG, CrashRig, alert_mails
from harness.service import upload, wait_until

FIRST = 1  # the queue id of the first upload, the one the kill interrupts


@dataclass(frozen=True)
class Step:
    """Where the kill lands: `arrange` slows a part before the uploads, `reach` waits until the
    service is at the step (leaving cleanups on the stack, undone after the kill)."""

    arrange: Callable[[CrashRig], None]
    reach: Callable[[CrashRig, ExitStack], None]
    extra_cloud_calls: int  # 1 where the kill came before the detection was saved
    first_alert_copies: int  # 2 where the mail server had the mail and the queue did not know


def slow_cloud(rig: CrashRig) -> None:
    rig.moto.rekognition.delay_seconds = 60  # the kill comes long before the answer


def in_the_detector_call(rig: CrashRig, stack: ExitStack) -> None:
    wait_until(lambda: rig.moto.rekognition.calls == 1, what="the detector call")
    assert not rig.detection_saved(FIRST)


def hold_rcpt(rig: CrashRig) -> None:
    rig.sink.hold("RCPT")


def hold_data(rig: CrashRig) -> None:
    rig.sink.hold("DATA")


def before_the_mail_is_handed_over(rig: CrashRig, stack: ExitStack) -> None:
    wait_until(rig.sink.holding.is_set, what="the mail server to hold the recipient")
    assert rig.detection_saved(FIRST) and alert_mails(rig.sink) == []


def while_the_server_holds_its_250(rig: CrashRig, stack: ExitStack) -> None:
    wait_until(rig.sink.holding.is_set, what="the mail server to hold its 250")
    assert len(alert_mails(rig.sink)) == 1


def after_delivery_before_it_is_marked(rig: CrashRig, stack: ExitStack) -> None:
    wait_until(rig.sink.holding.is_set, what="the mail server to hold its 250")
    stack.enter_context(write_lock_held(rig.folder / "data"))
    rig.sink.stop_holding()
    wait_until(lambda: rig.sink.quits == 1, what="the service to end the mail session")
    assert rig.notified(FIRST) == []


def while_the_event_is_recorded(rig: CrashRig, stack: ExitStack) -> None:
    """The snapshot file is a FIFO, so the service waits inside the event's recording until it
    is read; meanwhile another program holds the write lock the event then needs."""
    wait_until(rig.sink.holding.is_set, what="the mail server to hold the recipient")
    received = rig.query("SELECT received_at FROM uploads WHERE id = $1", (FIRST,))[0][0]
    folder = rig.snapshot_dir / f"{datetime.fromisoformat(received):%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = folder / f"{FIRST}.jpg"
    os.mkfifo(snapshot)
    stack.callback(snapshot.unlink)
    rig.sink.stop_holding()
    wait_until(lambda: rig.notified(FIRST) == ["email"], what="the alert to be marked sent")
    stack.enter_context(write_lock_held(rig.folder / "data"))
    reader = threading.Thread(target=snapshot.read_bytes, daemon=True)
    reader.start()  # lets the picture through; the thumbnail follows, then the locked write
    wait_until(lambda: (folder / f"{FIRST}_thumb.jpg").exists(), what="the thumbnail")
    assert rig.query("SELECT COUNT(*) FROM events")[0][0] == 0


STEPS = {
    "during the detector call": Step(slow_cloud, in_the_detector_call, 1, 1),
    "after the detection is saved, before notify": Step(
        hold_rcpt, before_the_mail_is_handed_over, 0, 1
    ),
    "while the mail server holds its 250": Step(hold_data, while_the_server_holds_its_250, 0, 2),
    "after delivery, before mark_notified": Step(
        hold_data, after_delivery_before_it_is_marked, 0, 2
    ),
    "while the event is recorded": Step(hold_rcpt, while_the_event_is_recorded, 0, 1),
}
# The recording is held by making the local snapshot file a FIFO: not possible with S3.
LOCAL_ONLY = {"while the event is recorded"}


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(step, marks=[pytest.mark.embedded_only] if name in LOCAL_ONLY else [])
        for name, step in STEPS.items()
    ],
    ids=STEPS.keys(),
)
def test_sigkill_at_a_step_loses_nothing_and_repeats_only_what_it_must(
    rig: CrashRig, step: Step
) -> None:
    # A cooldown: an alert sent again after a crash must not be suppressed by its own first
    # attempt (the memory of it may be written before the kill).
    rig.config_overrides = {"filters": {"cooldown_seconds": 3600}}
    step.arrange(rig)
    first = rig.start()
    upload(first.address(), "cam01", PERSON_JPEG, "a.jpg")
    upload(first.address(), "cam02", PERSON_JPEG, "b.jpg")
    wait_until(lambda: rig.query("SELECT COUNT(*) FROM uploads")[0][0] == 2, what="2 rows")
    with ExitStack() as cleanups:
        step.reach(rig, cleanups)
        first.kill()
    rig.moto.rekognition.delay_seconds = 0
    rig.sink.stop_holding()

    second = rig.start()
    rig.wait_drained()
    assert second.terminate() == 0

    tally = rig.tally()
    assert tally.lost == 0
    assert set(tally.events_per_upload.values()) == {1}  # exactly one event per upload
    assert rig.query("SELECT outcome FROM events ORDER BY id") == [("alert",), ("alert",)]
    assert tally.cloud_calls == 2 + step.extra_cloud_calls
    mails = alert_mails(rig.sink)
    first_alert = [m for m in mails if "event-1." in m["Message-ID"]]
    assert len(first_alert) == step.first_alert_copies
    assert len({m["Message-ID"] for m in first_alert}) == 1  # a copy is recognisably the same
    assert len(mails) == 1 + step.first_alert_copies
    assert "Alert for cam01 (event 1, " in first.output + second.output


def test_sigterm_finishes_the_item_in_progress_and_leaves_the_rest_queued(rig: CrashRig) -> None:
    rig.moto.rekognition.delay_seconds = 3  # the first upload is in the cloud when SIGTERM comes
    first = rig.start()
    names = ["a.jpg", "b.jpg", "c.jpg"]
    for name in names:
        upload(first.address(), "cam01", PERSON_JPEG, name)
    wait_until(lambda: rig.moto.rekognition.calls == 1, what="the first detector call")

    assert first.terminate() == 0  # terminate() bounds the wait: 60 s
    assert rig.query("SELECT id, state FROM uploads ORDER BY id") == [
        (1, "done"),
        (2, "pending"),
        (3, "pending"),
    ]
    assert len(alert_mails(rig.sink)) == 1

    rig.moto.rekognition.delay_seconds = 0
    second = rig.start()
    rig.wait_drained()
    assert second.terminate() == 0
    tally = rig.tally()
    assert (tally.lost, tally.events, tally.cloud_calls, tally.emails) == (0, 3, 3, 3)
