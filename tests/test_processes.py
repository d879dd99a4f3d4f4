"""Analysis in worker processes (`worker_processes`), with the service as a real process: the
processes share the queue, and one killed with SIGKILL is replaced without losing its uploads."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.aws import Moto, label
from harness.backends import query_database
from harness.service import (
    DATA,
    base_config,
    service_environment,
    upload,
    wait_until,
    write_config,
)

PERSON = label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))
PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
UPLOADS = 6


def analysis_processes(pid: int) -> list[int]:
    """The service's analysis children (spawned; not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in command and b"resource_tracker" not in command:
                found.append(int(child))
    return found


def finished(data: Path) -> list[tuple[Any, ...]]:
    return query_database(data, "SELECT state, outcome, notified FROM uploads")


def test_a_killed_worker_process_is_replaced_and_loses_nothing(
    tmp_path: Path, aws: Moto, service_process
) -> None:
    aws.rekognition.labels = [PERSON]
    aws.rekognition.delay_seconds = 1.0
    config = base_config(tmp_path, workers=2, worker_processes=2)
    process = service_process(
        ["-c", str(write_config(tmp_path, config)), "-n"], service_environment(aws)
    )
    address = process.address()
    children = wait_until(
        lambda: len(found := analysis_processes(process.process.pid)) == 2 and found,
        60,
        "two analysis processes",
    )
    for number in range(UPLOADS):
        upload(address, "cam01", PERSON_JPEG, f"{number}.jpg")
    wait_until(lambda: aws.rekognition.calls >= 1, 60, "analysis to start")
    os.kill(children[0], signal.SIGKILL)  # while it waits for the slow cloud
    aws.rekognition.delay_seconds = 0

    database = tmp_path / "data"
    wait_until(
        lambda: (
            len(rows := finished(database)) == UPLOADS
            and all(row == ("done", "alert", '["email"]') for row in rows)
        ),
        60,
        "every upload to be processed",
    )
    wait_until(lambda: "ended unexpectedly" in process.output, 30, "the replacement's log line")
    replaced = wait_until(
        lambda: len(found := analysis_processes(process.process.pid)) == 2 and found,
        60,
        "a replacement process",
    )
    assert children[0] not in replaced
    assert len(aws.sent_emails()) == UPLOADS  # the killed one had sent nothing yet
    # The dashboard (main process) knows the worker processes' detectors answer.
    dashboard = re.search(r"Dashboard: (http://\S+)", process.output)
    assert dashboard is not None
    health = httpx.get(dashboard.group(1).rstrip("/") + "/healthz", timeout=30).json()
    assert health["status"] == "ok" and health["detector"]["last_success"] is not None
    assert process.terminate() == 0


def test_uploads_analysed_in_worker_processes_are_counted_on_the_main_metrics(
    tmp_path: Path, aws: Moto, service_process
) -> None:
    aws.rekognition.labels = [PERSON]
    config = base_config(tmp_path, workers=1, worker_processes=2, node_name="node-a")
    process = service_process(
        ["-c", str(write_config(tmp_path, config)), "-n"], service_environment(aws)
    )
    address = process.address()
    wait_until(
        lambda: len(analysis_processes(process.process.pid)) == 2, 60, "two analysis processes"
    )
    for number in range(UPLOADS):
        upload(address, "cam01", PERSON_JPEG, f"{number}.jpg")
    wait_until(lambda: len(aws.sent_emails()) == UPLOADS, 60, "an alert per upload")
    dashboard = re.search(r"Dashboard: (http://\S+)", process.output)
    assert dashboard is not None
    url = dashboard.group(1).rstrip("/") + "/metrics"
    cam01 = {"camera": "cam01", "node": "node-a"}
    expected = {
        ("ipcam_uploads_total", frozenset(cam01.items())): UPLOADS,  # the main process's own
        ("ipcam_alerts_total", frozenset(cam01.items())): UPLOADS,  # the rest: the children's
        ("ipcam_outcomes_total", frozenset({**cam01, "outcome": "alert"}.items())): UPLOADS,
        ("ipcam_cloud_calls_total", frozenset(cam01.items())): UPLOADS,
        (
            "ipcam_detector_seconds_count",
            frozenset({"detector": "rekognition", "node": "node-a"}.items()),
        ): UPLOADS,
    }

    def counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        page = httpx.get(url, timeout=30).text
        # One family per name: Prometheus refuses a page that declares one twice.
        declared = [line for line in page.splitlines() if line.startswith("# TYPE ")]
        assert len(declared) == len(set(declared)), page
        families = text_string_to_metric_families(page)
        samples = [sample for family in families for sample in family.samples]
        return {(s.name, frozenset(s.labels.items())): s.value for s in samples}

    wait_until(lambda: expected.items() <= counted().items(), 30, "the worker processes' counts")
    assert process.terminate() == 0
