"""A camera's decisions under concurrency: with many workers analysing its uploads at once (a slow
cloud keeps them all in flight), cooldowns, budgets and retries come out as they would one upload
at a time."""

from __future__ import annotations

from harness.aws import Moto, label
from harness.service import DATA, RunningService, upload, wait_until
from harness.smtp import free_port, running_sink
from ipcam_analysis.store import EventFilter

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
IN_FLIGHT = 8


def outcomes(service: RunningService) -> list[str]:
    return [event["outcome"] for event in service.service.store.events(EventFilter(limit=100))]


def upload_at_once(service: RunningService, count: int) -> None:
    for number in range(count):
        upload(service.address, "cam01", PERSON_JPEG, f"{number:02d}.jpg")


def test_one_alert_in_a_cooldown_however_many_workers_decide_at_once(
    run_service, aws: Moto
) -> None:
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    aws.rekognition.delay_seconds = 0.5
    service = run_service(workers=IN_FLIGHT, filters={"cooldown_seconds": 3600})
    upload_at_once(service, IN_FLIGHT)
    service.wait_idle(timeout=120)

    assert sorted(outcomes(service)) == ["alert"] + ["suppressed"] * (IN_FLIGHT - 1)
    assert len(aws.sent_emails()) == 1


def test_the_daily_cap_is_never_overspent_by_parallel_workers(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [label("Person", 97.0)]
    aws.rekognition.delay_seconds = 0.5
    service = run_service(
        workers=IN_FLIGHT,
        email={"transport": "none"},
        budget={"daily_calls": 3, "on_exhausted": "none"},
    )
    upload_at_once(service, IN_FLIGHT)
    service.wait_idle(timeout=120)

    assert aws.rekognition.calls == 3
    assert sorted(outcomes(service)) == ["alert"] * 3 + ["skipped"] * (IN_FLIGHT - 3)


def test_a_retried_alert_is_sent_not_suppressed_by_its_own_cooldown(run_service, aws: Moto) -> None:
    """The first attempt decides and remembers the cooldown; the mail server is down, so the
    item is retried; once it is up, the retry sends the alert it decided, once."""
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    port = free_port()
    service = run_service(
        filters={"cooldown_seconds": 3600},
        email={
            "transport": "smtp",
            "sender_email": "sender@example.com",
            "recipients": ["owner@example.com"],
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        },
        retry={"first_delay_seconds": 0.2, "max_delay_seconds": 0.5},
    )
    upload(service.address, "cam01", PERSON_JPEG, "one.jpg")
    wait_until(
        lambda: service.service.database.query("SELECT attempts FROM uploads")[0][0] >= 2,
        60,
        "two failed attempts to send the alert",
    )
    with running_sink(with_login=False, port=port) as sink:
        service.wait_idle()
        assert len(sink.received) == 1
    assert outcomes(service) == ["alert"]
    assert aws.rekognition.calls == 1  # the detection is kept, never paid again
