"""What one upload costs SQLite's single writer, counted on the real service's write connection:
an alert by two channels takes at most 4 write transactions (accepted; claimed; the first
channel's mark with the detection, before the second channel sends; the event, the last mark
and the item closed together), a picture with nothing of interest 3, and none is spent on a
filter that is off (duplicate frames, cooldowns, stationary objects), an error streak there is
not, or a cloud budget with no cap."""

from __future__ import annotations

import pytest

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.service import RunningService, upload
from harness.sqlite_writes import WriteCounter, counted_writes
from harness.webhook import WebhookSink

pytestmark = pytest.mark.embedded_only  # about SQLite's one writer

# What a filter that is off, a streak there is not, or a budget without a cap would write.
UNNEEDED = ("camera_frames", "cooldowns", "stationary_objects", "camera_error_streaks")


def second_upload_counted(running: RunningService) -> WriteCounter:
    """The first upload warms up (its event sweeps old ones once); the second is counted."""
    upload(running.address, "cam01", PERSON_JPEG, "first.jpg")
    running.wait_idle()
    with counted_writes(running.service.database) as counter:
        upload(running.address, "cam01", PERSON_JPEG, "second.jpg")
        running.wait_idle()
    return counter


def test_an_alert_by_two_channels_takes_at_most_four_write_transactions(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    # Leases renewed once an hour: no renewal inside the counted upload.
    running = run_service(notify=[webhook_sink.url("/hook")], database={"lease_seconds": 3600})

    counter = second_upload_counted(running)

    assert running.outcomes() == [("first.jpg", "alert"), ("second.jpg", "alert")]
    assert len(aws.sent_emails()) == 2 and len(webhook_sink.received("/hook")) == 2
    assert counter.count <= 4, counter.written
    assert not [table for table in UNNEEDED if table in counter.written], counter.written
    assert "budget_notices" not in counter.written and aws.rekognition.calls == 2


def test_a_picture_with_nothing_of_interest_takes_three(run_service, aws: Moto) -> None:
    aws.rekognition.labels = []
    running = run_service(database={"lease_seconds": 3600})

    counter = second_upload_counted(running)

    assert running.outcomes() == [("first.jpg", "no_match"), ("second.jpg", "no_match")]
    assert counter.count <= 3, counter.written
    assert not [table for table in UNNEEDED if table in counter.written], counter.written
