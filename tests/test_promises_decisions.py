"""A camera's decisions really racing on PostgreSQL (what nodes share): two workers decide at the
same moment, held by a lock this test takes on the tables the decision writes until both wait
behind it, and still a cooldown lets one alert through and a budget one call. And a SIGKILL
between the memory of an alert and the decision that made it: both are kept, or neither."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from harness.aws import Moto
from harness.backends import DATABASE_URL
from harness.crash import PERSON, PERSON_JPEG, CrashRig, alert_mails
from harness.service import RunningService, upload, wait_until
from ipcam_analysis.store import EventFilter

pytestmark = pytest.mark.shared_only  # SQLite runs one write transaction at a time anyway

GATE_SECONDS = 120.0


def outcomes(service: RunningService) -> list[str]:
    return sorted(e["outcome"] for e in service.service.store.events(EventFilter(limit=10)))


def waiting_on_locks(statement: str = "") -> int:
    """The service's sessions waiting for a lock (in a statement starting so)."""
    with psycopg.connect(os.environ[DATABASE_URL], autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE %s",
            (statement + "%",),
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def writes_held(*tables: str) -> Iterator[None]:
    """Another program locks these tables against writes (reads go on) until the block ends."""
    with psycopg.connect(os.environ[DATABASE_URL]) as conn, conn.transaction():
        conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        yield


class GatedCloud:
    """Rekognition answers a person, but only once the gate opens."""

    def __init__(self, aws: Moto, request: pytest.FixtureRequest) -> None:
        self.gate = threading.Event()
        aws.rekognition.answer = self._answer
        request.addfinalizer(self.gate.set)  # before the service stops, whatever happened

    def _answer(self, image: bytes) -> list[dict[str, Any]]:
        self.gate.wait(GATE_SECONDS)
        return [PERSON]


def test_two_workers_deciding_at_once_send_one_alert_in_a_cooldown(
    run_service, aws: Moto, request: pytest.FixtureRequest
) -> None:
    cloud = GatedCloud(aws, request)
    service = run_service(workers=2, filters={"cooldown_seconds": 3600})
    upload(service.address, "cam01", PERSON_JPEG, "a.jpg")
    upload(service.address, "cam01", PERSON_JPEG, "b.jpg")
    wait_until(lambda: aws.rekognition.calls == 2, 60, "both uploads in the detector")
    with writes_held("cooldowns", "stationary_objects"):
        cloud.gate.set()
        # Each waits either to write what it decided, or for the other's decision to end.
        wait_until(lambda: waiting_on_locks() == 2, 60, "both workers deciding")
    service.wait_idle()

    assert outcomes(service) == ["alert", "suppressed"]
    assert len(aws.sent_emails()) == 1


def test_two_workers_reserving_at_once_make_one_call_on_a_budget_of_one(
    run_service, aws: Moto
) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service(workers=2, budget={"daily_calls": 1, "on_exhausted": "none"})
    with writes_held("cloud_calls", "budget_notices"):
        upload(service.address, "cam01", PERSON_JPEG, "a.jpg")
        upload(service.address, "cam01", PERSON_JPEG, "b.jpg")
        wait_until(lambda: waiting_on_locks() == 2, 60, "both workers reserving a call")
    service.wait_idle()

    assert aws.rekognition.calls == 1
    assert outcomes(service) == ["alert", "skipped"]


# Another program's trigger: a write of an upload's decision waits for the lock this test holds.
DECISION_WAITS = 4242
HOLD_DECISIONS = f"""
CREATE FUNCTION decision_waits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock({DECISION_WAITS}); RETURN NEW; END $$;
CREATE TRIGGER decision_waits BEFORE UPDATE OF decision ON uploads
FOR EACH ROW EXECUTE FUNCTION decision_waits();
"""


def test_sigkill_between_the_alert_memory_and_its_decision_keeps_neither(
    rig: CrashRig, aws: Moto, request: pytest.FixtureRequest
) -> None:
    """The kill lands while the decision's write waits for a lock another program holds: the
    cooldown it remembered must go with it, or the restart finds the alert in its own cooldown
    and the owner never hears of it."""
    cloud = GatedCloud(aws, request)
    rig.config_overrides = {"filters": {"cooldown_seconds": 3600}}
    first = rig.start()
    upload(first.address(), "cam01", PERSON_JPEG, "a.jpg")
    wait_until(lambda: aws.rekognition.calls == 1, 60, "the detector call")
    with psycopg.connect(os.environ[DATABASE_URL], autocommit=True) as held:
        held.execute(HOLD_DECISIONS)
        held.execute(f"SELECT pg_advisory_lock({DECISION_WAITS})")
        cloud.gate.set()
        wait_until(lambda: waiting_on_locks("UPDATE uploads SET decision") == 1, 60, "decide")
        first.kill()

    second = rig.start()
    rig.wait_drained()
    assert second.terminate() == 0
    assert rig.query("SELECT outcome FROM events") == [("alert",)]
    assert len(alert_mails(rig.sink)) == 1
