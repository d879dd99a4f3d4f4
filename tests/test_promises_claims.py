"""Claims on queued uploads: a worker slower than its lease keeps its item (its lease is renewed,
no one takes it over), a restarting node gives back its own claims at once (long before any
lease runs out), and a killed worker process's claims are given back, only its own."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto
from harness.backends import query_database
from harness.crash import PERSON, PERSON_JPEG, CrashRig, alert_mails
from harness.endurance import FixedLatencyDetector
from harness.service import base_config, service_environment, upload, wait_until, write_config
from ipcam_analysis.values import Detection, Snapshot, WatchedLabels
from tests.test_processes import analysis_processes

SHORT_LEASE = 6.0  # the least the config allows is 3 s
LONG_LEASE = 3600.0  # no lease runs out during a test: only a give-back frees a claim
GATE_SECONDS = 120.0


class CountingDetector(FixedLatencyDetector):
    """Answers "nothing found" once the gate opens, counting the calls (one list per service)."""

    def __init__(self, kind: str, gate: threading.Event, calls: list[str]) -> None:
        super().__init__(kind, gate=gate, gate_timeout=GATE_SECONDS)
        self._calls = calls

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        self._calls.append(self.kind)
        return super().detect(snapshot, watched)


@pytest.fixture
def gate(run_service) -> Iterator[threading.Event]:
    """Held detector calls; opened at the end (before the services stop) whatever happened."""
    event = threading.Event()
    yield event
    event.set()


def claims(data_dir: Path) -> list[tuple[Any, ...]]:
    return query_database(
        data_dir, "SELECT id, state, claimed_by, lease_until FROM uploads ORDER BY id"
    )


def test_an_item_held_longer_than_its_lease_stays_with_its_worker(
    run_service, gate: threading.Event, caplog
) -> None:
    caplog.set_level("INFO", logger="ipcam_analysis")
    calls: list[str] = []
    service = run_service(
        lambda kind: CountingDetector(kind, gate, calls),
        workers=2,  # one to hold the item, one idle that would take it over
        database={"lease_seconds": SHORT_LEASE},
    )
    data_dir = service.service.config.data_dir
    upload(service.address, "cam01", PERSON_JPEG, "slow.jpg")
    wait_until(lambda: calls, 30, "the detector call")
    [(_, _, owner, first_lease)] = claims(data_dir)
    # A whole lease past the end of the first one, the detector still busy.
    wait_until(lambda: time.time() > first_lease + SHORT_LEASE, 4 * SHORT_LEASE, "the lease")
    [(_, state, holder, lease)] = claims(data_dir)
    assert (state, holder) == ("working", owner) and lease > first_lease, "not renewed"
    assert len(calls) == 1, "another worker took the item over"
    gate.set()
    service.wait_idle()
    assert service.outcomes() == [("slow.jpg", "no_match")]
    assert "Taking over" not in caplog.text


def test_a_restarting_node_gives_back_its_claims_before_it_serves(rig: CrashRig) -> None:
    rig.config_overrides = {"database": {"lease_seconds": LONG_LEASE}}
    rig.moto.rekognition.delay_seconds = 60  # the kill comes long before the answer
    first = rig.start()
    upload(first.address(), "cam01", PERSON_JPEG, "a.jpg")
    wait_until(lambda: rig.moto.rekognition.calls == 1, 60, "the detector call")
    [held] = claims(rig.folder / "data")
    first.kill()
    rig.moto.rekognition.delay_seconds = 0

    second = rig.start()
    wait_until(lambda: "Ready: " in second.output, 60, "the service to say it is ready")
    [now] = claims(rig.folder / "data")
    assert now != held, "the dead process's claim is still held"
    rig.wait_drained()
    assert second.terminate() == 0
    assert rig.query("SELECT outcome FROM events") == [("alert",)]
    assert len(alert_mails(rig.sink)) == 1


def test_a_killed_worker_process_gives_back_its_claims_and_only_its_own(
    tmp_path: Path, aws: Moto, service_process, gate: threading.Event
) -> None:
    """As many uploads as workers, each held in the cloud: both processes hold claims, so the
    one killed holds some. Its claims come back at once; the living one keeps its own."""
    aws.rekognition.answer = lambda image: [PERSON] if gate.wait(GATE_SECONDS) else []
    workers, processes = 2, 2
    config = base_config(
        tmp_path,
        workers=workers,
        worker_processes=processes,
        database={"lease_seconds": LONG_LEASE},
    )
    process = service_process(
        ["-c", str(write_config(tmp_path, config)), "-n"], service_environment(aws)
    )
    address = process.address()
    children = wait_until(
        lambda: len(found := analysis_processes(process.process.pid)) == processes and found,
        60,
        "the analysis processes",
    )
    uploads = workers * processes
    for number in range(uploads):
        upload(address, "cam01", PERSON_JPEG, f"{number}.jpg")
    data_dir = tmp_path / "data"
    wait_until(lambda: aws.rekognition.calls == uploads, 60, "every worker in the cloud")
    before = {row[0]: row for row in claims(data_dir)}
    assert len({row[2] for row in before.values()}) == processes  # both hold claims

    os.kill(children[0], signal.SIGKILL)
    wait_until(lambda: "ended unexpectedly" in process.output, 60, "the watcher")

    def owners_given_back() -> set[str]:
        now = {row[0]: row for row in claims(data_dir)}
        return {row[2] for item, row in before.items() if now[item] != row}

    given_back = wait_until(owners_given_back, 60, "the dead process's claims to come back")
    assert len(given_back) == 1, "the living process's claims were given back too"
    gate.set()
    wait_until(lambda: all(row[1] == "done" for row in claims(data_dir)), 60, "every upload done")
    assert len(aws.sent_emails()) == uploads  # nothing analysed by two processes at once
    assert process.terminate() == 0
