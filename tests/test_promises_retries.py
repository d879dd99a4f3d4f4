"""An upload retried after a cloud error is analysed again, not taken for a repeat of itself, and
the call that failed is not counted against the budget."""

from __future__ import annotations

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.service import upload, wait_until

THROTTLED = (400, "ThrottlingException", "Rate exceeded")


def test_a_retried_upload_is_not_a_repeat_of_itself_nor_paid_twice(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    aws.rekognition.error = THROTTLED
    service = run_service(
        filters={"duplicate_hash_distance": 6},
        budget={"daily_calls": 1, "on_exhausted": "none"},
    )
    upload(service.address, "cam01", PERSON_JPEG, "a.jpg")
    wait_until(
        lambda: service.service.database.query("SELECT attempts FROM uploads")[0][0] >= 1,
        60,
        "an attempt that failed",
    )
    aws.rekognition.error = None
    service.wait_idle()

    assert service.outcomes() == [("a.jpg", "alert")]
    assert len(aws.sent_emails()) == 1
