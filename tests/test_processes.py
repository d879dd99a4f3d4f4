"""Analysis in worker processes (`worker_processes`), with the service as a real process: the
processes share the queue, and one killed with SIGKILL is replaced without losing its uploads."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx

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


def test_the_worker_processes_counts_show_on_the_main_processes_metrics(
    tmp_path: Path, aws: Moto, service_process
) -> None:
    aws.rekognition.labels = [PERSON]
    config = base_config(tmp_path, workers=1, worker_processes=2, node_name="node-a")
    process = service_process(
        ["-c", str(write_config(tmp_path, config)), "-n"], service_environment(aws)
    )
    address = process.address()
    for number in range(3):
        upload(address, "cam01", PERSON_JPEG, f"{number}.jpg")
    wait_until(lambda: len(aws.sent_emails()) == 3, 60, "three alerts")
    dashboard = re.search(r"Dashboard: (http://\S+)", process.output)
    assert dashboard is not None
    url = dashboard.group(1).rstrip("/") + "/metrics"
    labels = 'camera="cam01",node="node-a"'
    expected = [
        f"ipcam_uploads_total{{{labels}}} 3.0",  # counted by the main process
        f"ipcam_alerts_total{{{labels}}} 3.0",  # the rest by the worker processes
        f'ipcam_outcomes_total{{{labels},outcome="alert"}} 3.0',
        f"ipcam_cloud_calls_total{{{labels}}} 3.0",
        'ipcam_detector_seconds_count{detector="rekognition",node="node-a"} 3.0',
    ]
    wait_until(
        lambda: all(line in httpx.get(url, timeout=30).text for line in expected),
        30,
        "the worker processes' counts on /metrics",
    )
    assert process.terminate() == 0
