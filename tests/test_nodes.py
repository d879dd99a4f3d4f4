"""Many nodes on one PostgreSQL database: two ingest nodes take the cameras' uploads, three worker
nodes analyse them, each a real `ipcam-analysis --role ...` process. A worker killed mid-item
loses nothing (its lease runs out and another finishes it), nothing is analysed or e-mailed
twice, and per-camera decisions (cooldown, budget) stay exact across the nodes."""

from __future__ import annotations

import ftplib
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from harness.aws import REGION, Moto, label
from harness.backends import query_database
from harness.nodes import Cluster
from harness.postgres import PostgresServer
from harness.service import DATA, upload, wait_until
from ipcam_analysis.store.postgres import PostgresDatabase
from ipcam_analysis.store.schema import SCHEMA_VERSION

PERSON = label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))
PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
UPLOADS_PER_CAMERA = 6
pytestmark = pytest.mark.shared_only


def rows(cluster: Cluster, sql: str) -> list[tuple]:
    return query_database(cluster.folder, sql)


def all_done(cluster: Cluster, expected: int) -> list[tuple] | None:
    found = rows(cluster, "SELECT id, state, outcome, notified, claimed_by FROM uploads")
    return found if len(found) == expected and all(r[1] == "done" for r in found) else None


def start_nodes(cluster: Cluster) -> list[tuple[str, int]]:
    """Two ingest nodes (their FTP addresses) and three worker nodes of one thread each."""
    addresses = [cluster.start(f"ingest-{n}", "ingest").address() for n in (1, 2)]
    for n in (1, 2, 3):
        cluster.start(f"worker-{n}", "worker", workers=1)
    return addresses


def test_a_killed_worker_node_loses_nothing_and_nothing_is_sent_twice(cluster: Cluster) -> None:
    cluster.moto.rekognition.labels = [PERSON]
    cluster.moto.rekognition.delay_seconds = 1.0
    addresses = start_nodes(cluster)
    for n in range(UPLOADS_PER_CAMERA):
        for camera, address in zip(("cam01", "cam02"), addresses, strict=True):
            upload(address, camera, PERSON_JPEG, f"{camera}-{n}.jpg")

    def held_by_worker_2() -> bool:
        return bool(rows(cluster, "SELECT 1 FROM uploads WHERE claimed_by LIKE 'worker-2/%'"))

    wait_until(held_by_worker_2, 60, "worker-2 to claim an upload")
    cluster.nodes["worker-2"].kill()  # SIGKILL, mid-item: its claim stays in the database

    done = wait_until(lambda: all_done(cluster, 2 * UPLOADS_PER_CAMERA), 120, "every upload")
    assert {(state, outcome, notified) for _, state, outcome, notified, _ in done} == {
        ("done", "alert", '["email"]')
    }
    assert cluster.taken_over(), cluster.output()  # a lease ran out and another node took it
    events = rows(cluster, "SELECT id, camera FROM events")
    assert sorted(e[0] for e in events) == sorted(r[0] for r in done)  # one event per upload
    mails = cluster.moto.sent_emails()
    copies = Counter(mail["Message-ID"] for mail in mails)  # one id per event
    assert len(mails) == 2 * UPLOADS_PER_CAMERA and max(copies.values()) == 1, copies
    # The nodes share only the database and the bucket (IPCAM_STORAGE_URL): the pictures are there.
    bucket, prefix = os.environ["IPCAM_STORAGE_URL"].removeprefix("s3://").split("/", 1)
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=prefix)
    snapshots = [o["Key"] for o in listed.get("Contents", []) if "/snapshots/" in o["Key"]]
    assert len(snapshots) == len(events)  # each event's picture


def test_cooldown_and_budget_stay_exact_across_worker_nodes(cluster: Cluster) -> None:
    cluster.moto.rekognition.labels = [PERSON]
    cluster.moto.rekognition.delay_seconds = 0.2
    cluster.config_overrides = {
        "budget": {"on_exhausted": "none"},
        "cameras": {
            "cam01": {"filters": {"cooldown_seconds": 3600}},
            "cam02": {"budget": {"daily_calls": 3}},
        },
    }
    addresses = [cluster.start("ingest-1", "ingest").address()]
    for n in (1, 2, 3):
        cluster.start(f"worker-{n}", "worker", workers=2)
    for n in range(UPLOADS_PER_CAMERA):
        for camera in ("cam01", "cam02"):
            upload(addresses[0], camera, PERSON_JPEG, f"{camera}-{n}.jpg")

    done = wait_until(lambda: all_done(cluster, 2 * UPLOADS_PER_CAMERA), 120, "every upload")
    claimed_by = {row[4].split("/")[0] for row in done}
    assert len(claimed_by) > 1  # the work was shared between nodes
    outcomes = Counter(
        (camera, outcome) for camera, outcome in rows(cluster, "SELECT camera, outcome FROM events")
    )
    assert outcomes[("cam01", "alert")] == 1  # then the cooldown, whichever node decided
    assert outcomes[("cam01", "suppressed")] == UPLOADS_PER_CAMERA - 1
    assert outcomes[("cam02", "alert")] == 3  # the camera's daily cap, not one call more
    assert sum(n for (camera, _), n in outcomes.items() if camera == "cam02") == UPLOADS_PER_CAMERA
    ((calls,),) = rows(cluster, "SELECT SUM(calls) FROM cloud_calls WHERE camera = 'cam02'")
    assert calls == 3
    assert cluster.moto.rekognition.calls == UPLOADS_PER_CAMERA + 3
    subjects = Counter(mail["Subject"] for mail in cluster.moto.sent_emails())
    assert subjects == {
        "⚡ cam01: detected Person": 1,
        "⚡ cam02: detected Person": 3,
        "ipcam-analysis: Cloud budget for cam02": 1,  # its warning, once for all the nodes
    }


def test_a_database_outage_refuses_uploads_and_loses_none(
    run_service, aws: Moto, postgres_server: PostgresServer
) -> None:
    """PostgreSQL stopped: the camera's upload is refused (it sends it again) rather than
    acknowledged and lost; once the server is back, the same upload goes through and alerts."""
    aws.rekognition.labels = [PERSON]
    service = run_service()
    service.service.database.query("SELECT 1")  # connected before the outage
    address = service.address
    postgres_server.stop()
    try:
        with pytest.raises(ftplib.Error, match=r"^4"):
            upload(address, "cam01", PERSON_JPEG, "during-outage.jpg")
    finally:
        postgres_server.start()
    upload(address, "cam01", PERSON_JPEG, "during-outage.jpg")  # the camera's retry
    service.wait_idle()
    assert service.outcomes() == [("during-outage.jpg", "alert")]


def test_nodes_starting_together_create_the_schema_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four nodes opening a new database at the same moment: one migrates, the others wait for
    it under the advisory lock and find the schema ready."""
    caplog.set_level(logging.INFO, "ipcam_analysis")
    with ThreadPoolExecutor(4) as pool:
        databases = list(pool.map(lambda _: PostgresDatabase(postgres_url), range(4)))
    try:
        versions = {database.schema_version() for database in databases}
        assert versions == {SCHEMA_VERSION}
        assert databases[0].query("SELECT COUNT(*) FROM schema_version") == [(1,)]
        upgrades = [r for r in caplog.records if r.getMessage().endswith("schema to version 1")]
        assert len(upgrades) == 1
    finally:
        for database in databases:
            database.close()
