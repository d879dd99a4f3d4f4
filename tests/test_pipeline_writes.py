"""What one alert costs SQLite's single writer: at most 4 write transactions for a two-channel
alert (accept, claim, one before the second channel sends, the event with the item closed),
none for a filter that is off."""

from __future__ import annotations

import sqlite3

import pytest

from harness.aws import Moto
from harness.crash import PERSON, PERSON_JPEG
from harness.service import RunningService, upload
from harness.webhook import WebhookSink

pytestmark = pytest.mark.embedded_only  # about SQLite's one writer


class WriteCounter:
    """Counts the write transactions on a connection, from the statements SQLite runs: a
    BEGIN, or a write statement on its own (autocommit)."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []
        self._in_transaction = False

    def __call__(self, statement: str) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb == "BEGIN":
            self._in_transaction = True
            self.count += 1
        elif verb in ("COMMIT", "ROLLBACK"):
            self._in_transaction = False
        elif verb in ("INSERT", "UPDATE", "DELETE", "REPLACE") and not self._in_transaction:
            self.count += 1
        self.statements.append(statement)


def counted_writes(running: RunningService) -> WriteCounter:
    counter = WriteCounter()
    writer: sqlite3.Connection = running.service.database._writer  # type: ignore[attr-defined]
    writer.set_trace_callback(counter)
    return counter


def test_a_two_channel_alert_takes_at_most_four_write_transactions(
    run_service, aws: Moto, webhook_sink: WebhookSink
) -> None:
    aws.rekognition.labels = [PERSON]
    # Leases renewed once an hour: no renewal inside the counted upload.
    running = run_service(notify=[webhook_sink.url("/hook")], database={"lease_seconds": 3600})
    upload(running.address, "cam01", PERSON_JPEG, "first.jpg")  # the first event sweeps ages
    running.wait_idle()
    counter = counted_writes(running)
    upload(running.address, "cam01", PERSON_JPEG, "second.jpg")
    running.wait_idle()
    running.service.database._writer.set_trace_callback(None)  # type: ignore[attr-defined]

    assert running.outcomes() == [("first.jpg", "alert"), ("second.jpg", "alert")]
    assert len(aws.sent_emails()) == 2 and len(webhook_sink.received("/hook")) == 2
    assert counter.count <= 4, "\n".join(counter.statements)
    # The duplicate filter, cooldowns, stationary objects and error streaks are off or idle.
    written = " ".join(counter.statements)
    for table in ("camera_frames", "cooldowns", "stationary_objects", "camera_error_streaks"):
        assert table not in written
