"""Faults inside the running service: a detector or notifier with a bug, a file that vanishes
before analysis; each upload still ends as one event and the service keeps serving."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.endurance import FixedLatencyDetector
from harness.service import RunningService, upload, wait_until
from harness.webhook import WebhookSink
from ipcam_analysis.notify.apprise import AppriseNotifier
from ipcam_analysis.service.pipeline import MAX_INTERNAL_ERRORS
from ipcam_analysis.values import Alert, Detection, NotifyOutcome, Snapshot, WatchedLabels

ERROR_SUBJECTS = ("Image processing error", "Alert not delivered by every channel")


class BuggyDetector(FixedLatencyDetector):
    """Raises what no detector is supposed to raise (a bug) while `broken` is set."""

    def __init__(self, kind: str, broken: threading.Event) -> None:
        super().__init__(kind)
        self._broken = broken

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        if self._broken.is_set():
            raise RuntimeError("a bug in the detector")
        return super().detect(snapshot, watched)


def error_mails(aws: Moto) -> list[str]:
    """The text of each error e-mail SES accepted."""
    return [
        mail.get_body(("plain",)).get_content()
        for mail in aws.sent_emails()
        if mail["Subject"] in ERROR_SUBJECTS
    ]


def attempts(running: RunningService, name: str) -> int:
    query = "SELECT attempts FROM uploads WHERE original_name = $1"
    return running.service.database.query(query, (name,))[0][0]


def test_a_detector_bug_is_retried_then_an_error_event_with_an_email(
    run_service, aws: Moto
) -> None:
    broken = threading.Event()
    broken.set()
    running = run_service(lambda kind: BuggyDetector(kind, broken))

    upload(running.address, "cam01", PERSON_JPEG, "bug.jpg")
    running.wait_idle()
    broken.clear()
    upload(running.address, "cam02", PERSON_JPEG, "after.jpg")
    running.wait_idle()

    assert running.outcomes() == [("bug.jpg", "error"), ("after.jpg", "no_match")]
    assert attempts(running, "bug.jpg") == MAX_INTERNAL_ERRORS
    (text,) = error_mails(aws)
    assert "camera cam01" in text and "internal error" in text
    event = running.service.database.query("SELECT reason FROM events WHERE outcome = 'error'")
    assert event[0][0] == "internal error (see the log)"


def test_a_notifier_bug_fails_its_channel_only_then_an_error_event_with_an_email(
    run_service, aws: Moto, webhook_sink: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy_send(self: AppriseNotifier, alert: Alert) -> NotifyOutcome:
        raise KeyError("a bug in the notifier")

    monkeypatch.setattr(AppriseNotifier, "send", buggy_send)
    aws.rekognition.labels = [PERSON]
    running = run_service(
        cameras={"cam01": {"notify": [webhook_sink.url("/hook")]}},
        retry={"error_email_after_attempts": 2, "give_up_after_hours": 0.002},  # 7 s
    )
    upload(running.address, "cam01", PERSON_JPEG, "bug.jpg")
    # error_email_after_attempts: the owner hears of it at the 2nd attempt, long before the
    # upload is given up (give_up_after_hours).
    wait_until(lambda: error_mails(aws), what="the error e-mail")
    assert running.outcomes() == []
    running.wait_idle()
    upload(running.address, "cam02", PERSON_JPEG, "after.jpg")
    running.wait_idle()

    assert running.outcomes() == [("bug.jpg", "error"), ("after.jpg", "alert")]
    assert attempts(running, "bug.jpg") > 2  # retried until the upload was too old
    alerts = [m for m in aws.sent_emails() if m["Subject"] not in ERROR_SUBJECTS]
    assert len(alerts) == 2  # one each: the e-mail channel was neither blocked nor repeated
    (text,) = error_mails(aws)
    assert "apprise:json failed: internal error (KeyError)" in text
    # Honest: the picture was analysed and e-mailed; only the webhook failed.
    assert "email sent" in text


@pytest.mark.embedded_only  # a file in a local folder; with S3 the picture is in the bucket
def test_a_file_that_vanishes_before_analysis_is_a_missing_event(
    run_service, tmp_path: Path
) -> None:
    gate = threading.Event()  # holds the first analysis while the second file is removed
    running = run_service(lambda kind: FixedLatencyDetector(kind, gate=gate), workers=1)
    upload(running.address, "cam01", PERSON_JPEG, "first.jpg")
    upload(running.address, "cam02", PERSON_JPEG, "gone.jpg")
    (gone,) = wait_until(lambda: list((tmp_path / "ftp").rglob("gone.jpg")), what="the file")
    gone.unlink()
    gate.set()
    running.wait_idle()

    assert running.outcomes() == [("first.jpg", "no_match"), ("gone.jpg", "missing")]
    upload(running.address, "cam02", PERSON_JPEG, "later.jpg")
    running.wait_idle()
    assert running.outcomes()[-1] == ("later.jpg", "no_match")
