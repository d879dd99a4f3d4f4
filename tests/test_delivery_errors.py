"""A channel that fails: the error e-mail says what still worked, and retries back off."""

from __future__ import annotations

import logging
import re

import pytest

from harness.aws import Moto
from harness.service import upload, wait_until
from harness.smtp import free_port
from tests.test_service import PERSON, PERSON_JPEG

DELIVERY_SUBJECT = "Alert not delivered by every channel"


def test_a_down_channel_gets_an_honest_error_email_and_backs_off(
    run_service, aws: Moto, caplog: pytest.LogCaptureFixture
) -> None:
    aws.rekognition.labels = [PERSON]
    # A webhook nobody listens on: "connection refused", as a Telegram outage would be.
    dead_webhook = f"json://127.0.0.1:{free_port()}/hook"
    service = run_service(notify=[dead_webhook], retry={"error_email_after_attempts": 3})
    caplog.set_level(logging.WARNING, logger="ipcam_analysis.service.pipeline")

    upload(service.address, "cam01", PERSON_JPEG, "gate.jpg")

    def delivery_errors() -> list:
        return [m for m in aws.sent_emails() if m["Subject"] == DELIVERY_SUBJECT]

    (report,) = wait_until(delivery_errors, what="the delivery error e-mail")
    text = report.get_body(("plain",)).get_content()
    assert "An alert from camera cam01 did not reach every channel." in text
    assert "analysed (Person); email sent; apprise:json failed: " in text
    assert "Failed to process" not in text
    # The alert itself went out once; only the webhook is tried again.
    alerts = [m for m in aws.sent_emails() if "Person" in m["Subject"]]
    assert len(alerts) == 1
    assert aws.rekognition.calls == 1

    # Each retry waits twice as long as the one before (0.2, 0.4, 0.8 s, logged rounded), up to
    # the maximum (1 s in tests), as a detector or mail outage does: not a fixed short delay.
    wait_until(lambda: len(retry_delays(caplog)) >= 5, what="five retries")
    delays = retry_delays(caplog)[:5]
    assert delays == sorted(delays) and delays[0] < delays[-1] == 1
    assert len(delivery_errors()) == 1  # one e-mail per failure streak


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    found = []
    for record in caplog.records:
        match = re.search(r"apprise:json: .*retrying in ([\d.]+) s", record.getMessage())
        if match:
            found.append(float(match[1]))
    return found
