"""The event store: events for every outcome, filters and paging, retention, schema migrations."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from harness.aws import Moto, label
from harness.backends import DATABASE_URL
from harness.service import DATA, copy_test_image, upload
from harness.web import days_ago, event_record, person, snapshot_of
from ipcam_analysis.store import EventFilter, EventRecord, EventStore, LocalStorage
from ipcam_analysis.store.database import Database, DatabaseSettings, SqliteDatabase, open_database
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.store.retention import HistoryConfig
from ipcam_analysis.store.schema import SCHEMA_VERSION
from ipcam_analysis.values import CameraEvent, Label, NotifyOutcome, Upload

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
EVERY_OUTCOME = ("alert", "no_match", "outside_window", "not_image", "corrupt", "missing", "error")


OPENED: list[Database] = []


@pytest.fixture(autouse=True)
def _close_databases() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def open_this_database(tmp_path: Path) -> Database:
    """The test's backend: SQLite in tmp_path/data, or its PostgreSQL database."""
    database = open_database(DatabaseSettings(url=os.environ.get(DATABASE_URL)), tmp_path / "data")
    OPENED.append(database)
    return database


def open_store(tmp_path: Path, **history: float) -> EventStore:
    return EventStore(
        open_this_database(tmp_path), LocalStorage(tmp_path / "data"), HistoryConfig(**history)
    )


def snapshot_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "snapshots"


def test_every_outcome_is_an_event_with_what_was_learned(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for number, outcome in enumerate(EVERY_OUTCOME, start=1):
        pictured = outcome in ("alert", "no_match", "outside_window", "error")
        store.record(
            event_record(
                number,
                outcome=outcome,
                labels=[person()] if outcome in ("alert", "no_match") else [],
                triggered=["Person"] if outcome == "alert" else [],
                snapshot=snapshot_of() if pictured else None,
                notifications=[NotifyOutcome("ses", True, "message id 42")]
                if outcome == "alert"
                else [],
                reason="Rekognition unreachable" if outcome == "error" else None,
                cloud_calls=1 if outcome in ("alert", "no_match") else 0,
            )
        )
    events = store.events(EventFilter())
    assert [e["outcome"] for e in events] == list(reversed(EVERY_OUTCOME))  # newest first
    alert = store.event(1)
    assert alert is not None
    assert alert["labels"][0]["name"] == "Person"
    assert alert["labels"][0]["instances"][0]["box"] == {
        "left": 0.25,
        "top": 0.2,
        "width": 0.2,
        "height": 0.6,
    }
    assert alert["triggered"] == ["Person"]
    assert alert["notifications"] == [{"notifier": "ses", "ok": True, "detail": "message id 42"}]
    assert (alert["width"], alert["height"]) == (640, 424)
    assert alert["file_size"] == len(PERSON_JPEG)
    assert alert["detector"] == "rekognition" and alert["cloud_calls"] == 1
    assert alert["original_name"] == "2026/1.jpg"
    assert store.event(7)["reason"] == "Rekognition unreachable"
    assert not store.event(4)["has_snapshot"]  # not an image: nothing to keep
    # The camera's own JPEG bytes are kept, and no thumbnail: pages draw it when they show it.
    assert store.snapshot(1).read_bytes() == PERSON_JPEG
    assert store.snapshot(1, thumbnail=True) is None


def test_recording_an_upload_again_replaces_its_event(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.record(event_record(5, outcome="error", snapshot=snapshot_of(), reason="timeout"))
    # A detector naming a label twice still gives one event per label filter.
    labels = [person(), Label("person", 60.0)]
    store.record(event_record(5, labels=labels, triggered=["Person"], snapshot=snapshot_of()))
    (event,) = store.events(EventFilter())
    assert event["outcome"] == "alert" and event["reason"] is None
    assert [e["id"] for e in store.events(EventFilter(label="person"))] == [5]
    size = sum(path.stat().st_size for path in snapshot_dir(tmp_path).rglob("*.jpg"))
    assert store.snapshot_bytes == size


def test_filters_and_keyset_paging(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for number in range(1, 121):
        store.record(
            event_record(
                number,
                camera="cam01" if number % 2 else "cam02",
                received_at=days_ago((120 - number) / 24),  # one per hour, oldest first
                outcome="alert" if number % 3 == 0 else "no_match",
                labels=[person()] if number % 3 == 0 else [Label("Tree", 90.0)],
                triggered=["Person"] if number % 3 == 0 else [],
            )
        )
    first = store.events(EventFilter(limit=50))
    second = store.events(EventFilter(limit=50, before_id=first[-1]["id"]))
    third = store.events(EventFilter(limit=50, before_id=second[-1]["id"]))
    ids = [e["id"] for page in (first, second, third) for e in page]
    assert ids == list(range(120, 0, -1))
    assert {e["camera"] for e in store.events(EventFilter(camera="cam02", limit=500))} == {"cam02"}
    persons = store.events(EventFilter(label="PERSON", limit=500))  # labels match any case
    assert [e["id"] for e in persons] == list(range(120, 0, -3))
    assert store.events(EventFilter(outcome="alert", limit=500)) == persons
    recent = store.events(EventFilter(since=days_ago(1).timestamp() + 60, limit=500))
    assert [e["id"] for e in recent] == list(range(120, 96, -1))
    older = store.events(EventFilter(until=days_ago(4).timestamp(), limit=500))
    assert max(e["id"] for e in older) <= 24
    both = store.events(EventFilter(camera="cam01", label="Person", limit=500))
    assert {e["id"] % 6 for e in both} == {3}


def test_retention_by_age_removes_old_events_and_their_files(tmp_path: Path) -> None:
    store = open_store(tmp_path, keep_days=7)
    store.record(event_record(1, received_at=days_ago(10), snapshot=snapshot_of()))
    store.record(
        event_record(2, received_at=days_ago(8), labels=[person()], snapshot=snapshot_of())
    )
    store.record(event_record(3, received_at=days_ago(1), snapshot=snapshot_of()))
    # The first write after start-up sweeps at once; later ones only every few minutes.
    assert [e["id"] for e in store.events(EventFilter())] == [3, 2]
    store.enforce_retention(time.time(), force_age_sweep=True)
    assert [e["id"] for e in store.events(EventFilter())] == [3]
    assert store.events(EventFilter(label="Person")) == []
    day_folders = sorted(p.name for p in snapshot_dir(tmp_path).iterdir())
    assert day_folders == [days_ago(1).strftime("%Y-%m-%d")]  # emptied day folders are gone
    assert store.snapshot_bytes == sum(
        p.stat().st_size for p in snapshot_dir(tmp_path).rglob("*.jpg")
    )


def test_retention_by_age_removes_what_the_queue_kept_of_old_uploads(tmp_path: Path) -> None:
    """Months of uploads do not pile up in the database behind the events retention removed."""
    store = open_store(tmp_path, keep_days=7)
    queue = UploadQueue(store._db)
    for days in (10, 8, 1):
        item_id = queue.put(Upload("cam01", tmp_path / f"{days}.jpg", days_ago(days)))
        assert queue.claim() is not None
        queue.finish(item_id, "alert")
        store.record(event_record(item_id, received_at=days_ago(days)))
    late = queue.put(Upload("cam01", tmp_path / "late.jpg", days_ago(9)))  # still to analyse

    store.enforce_retention(time.time(), force_age_sweep=True)

    kept = store._db.query("SELECT path FROM uploads ORDER BY id")
    assert [Path(row[0]).name for row in kept] == ["1.jpg", "late.jpg"]
    assert queue.claim().id == late


def test_retention_by_size_drops_oldest_pictures_and_keeps_the_events(tmp_path: Path) -> None:
    one_event = len(PERSON_JPEG)  # its picture (thumbnails are drawn when shown, not kept)
    store = open_store(tmp_path, max_snapshots_mb=3.5 * one_event / 1024 / 1024)
    for number in range(1, 9):
        store.record(event_record(number, snapshot=snapshot_of()))
        assert store.snapshot_bytes <= 3.5 * one_event
    kept = [e["id"] for e in store.events(EventFilter()) if e["has_snapshot"]]
    assert kept == [8, 7, 6]
    assert len(store.events(EventFilter())) == 8  # the events stay, without pictures
    assert store.snapshot(1) is None
    files = list(snapshot_dir(tmp_path).rglob("*.jpg"))
    assert len(files) == 3 and store.snapshot_bytes == sum(p.stat().st_size for p in files)
    # The running total is read back from the database after a restart.
    reopened = EventStore(
        open_this_database(tmp_path), LocalStorage(tmp_path / "data"), HistoryConfig()
    )
    assert reopened.snapshot_bytes == store.snapshot_bytes


def test_snapshot_files_are_found_through_the_database_only(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.record(event_record(1, snapshot=snapshot_of()))
    secret = tmp_path / "secret.txt"
    secret.write_text("not a picture")
    # Even a database row pointing outside the snapshot folder is not served.
    for outside in ("../../secret.txt", str(secret)):
        store._db.execute("UPDATE events SET snapshot = $1 WHERE id = 1", (outside,))
        assert store.snapshot(1) is None
    assert store.snapshot(2) is None


def test_camera_state_and_usage(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.record(event_record(1, camera="cam01", received_at=days_ago(3), snapshot=snapshot_of()))
    store.record(event_record(2, camera="cam01", labels=[person()], triggered=["Person"]))
    store.record(event_record(3, camera="cam01", outcome="error", reason="boom", cloud_calls=0))
    cam01, cam02 = store.cameras(["cam01", "cam02"])
    assert cam01["uploads_today"] == 2 and cam01["alerts_today"] == 1
    assert cam01["last_error"] == "boom" and cam01["last_alert"] is not None
    assert cam01["last_snapshot_event"] == 1 and cam01["silent_seconds"] < 60
    assert cam02["last_upload"] is None and cam02["uploads_today"] == 0
    days = {(row["day"], row["camera"]): row for row in store.usage(30)}
    today = datetime.now().strftime("%Y-%m-%d")
    assert days[(today, "cam01")] == {
        "day": today,
        "camera": "cam01",
        "uploads": 2,
        "alerts": 1,
        "cloud_calls": 1,
    }
    assert days[(days_ago(3).strftime("%Y-%m-%d"), "cam01")]["cloud_calls"] == 1


@pytest.mark.embedded_only
def test_a_new_database_gets_the_whole_schema(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "new.db")
    assert database.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    tables = {
        row[0] for row in database.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {"uploads", "events", "event_labels", "cameras"} <= tables
    database.close()
    assert SqliteDatabase(tmp_path / "new.db").query("PRAGMA user_version")[0][0] == SCHEMA_VERSION


@pytest.mark.embedded_only
def test_a_version_1_database_is_upgraded_and_its_queued_upload_survives(
    tmp_path: Path, run_service, aws: Moto
) -> None:
    """The schema of the first release, with an upload accepted just before an upgrade."""
    path = tmp_path / "data" / "ipcam_analysis.db"
    path.parent.mkdir(parents=True)
    upload_file = copy_test_image("darknet_person.jpg", tmp_path / "ftp" / "cam01" / "old.jpg")
    with sqlite3.connect(path) as old:
        old.executescript((DATA / "database_v1.sql").read_text(encoding="utf-8"))
        old.execute(
            "INSERT INTO uploads (camera, path, original_name, remote_ip, received_at)"
            " VALUES ('cam01', ?, 'old.jpg', '192.0.2.7', ?)",
            (str(upload_file), datetime.now().astimezone().isoformat()),
        )
        old.execute("PRAGMA user_version = 1")
    old.close()
    aws.rekognition.labels = [label("Person", 97, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service()
    service.wait_idle()
    assert service.outcomes() == [("old.jpg", "alert")]
    (event,) = service.service.store.events(EventFilter())
    assert event["original_name"] == "old.jpg" and event["triggered"] == ["Person"]
    assert service.service.database.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION


def test_real_uploads_are_recorded_with_their_outcome(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [label("Person", 97, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service()
    upload(service.address, "cam01", PERSON_JPEG, "2026-11-23/person.jpg")
    upload(service.address, "cam02", b"hello from the camera's FTP test", "test.txt")
    service.wait_idle()
    store = service.service.store
    by_name = {e["original_name"]: e for e in store.events(EventFilter())}
    person_event = by_name["2026-11-23/person.jpg"]
    assert person_event["outcome"] == "alert" and person_event["cloud_calls"] == 1
    assert [n["notifier"] for n in person_event["notifications"]] == ["email"]
    assert all(n["ok"] for n in person_event["notifications"])
    assert by_name["test.txt"]["outcome"] == "not_image"
    assert not by_name["test.txt"]["has_snapshot"]


def test_queue_reports_its_oldest_pending_upload(tmp_path: Path) -> None:
    age_seconds = 90
    queue = UploadQueue(open_this_database(tmp_path))
    assert queue.oldest_pending_age() is None
    received = datetime.fromtimestamp(time.time() - age_seconds).astimezone()
    queue.put(Upload("cam01", tmp_path / "a.jpg", received))
    queue.put(Upload("cam01", tmp_path / "b.jpg", datetime.now().astimezone()))
    assert age_seconds <= queue.oldest_pending_age() < age_seconds + 30
    item = queue.claim()
    assert queue.oldest_pending_age() >= age_seconds  # being worked on still counts
    queue.finish(item.id, "alert")
    assert queue.oldest_pending_age() < 30


def camera_event(camera: str, event: str, at: datetime) -> CameraEvent:
    return CameraEvent(camera, "192.168.1.20", at, event, "Start", 0, "a7c81f0e5d6b4c3a")


def test_camera_events_are_listed_and_noted_once_on_the_next_upload(tmp_path: Path) -> None:
    events = open_store(tmp_path, keep_days=1).camera_events
    now = datetime.now().astimezone()
    events.record(camera_event("cam01", "MotionDetect", now - timedelta(seconds=90)))
    events.record(camera_event("cam01", "HumanDetect", now - timedelta(seconds=5)))
    events.record(camera_event("cam02", "VideoLoss", now))

    assert [e["event"] for e in events.recent()] == ["VideoLoss", "HumanDetect", "MotionDetect"]
    assert [e["event"] for e in events.recent("cam01", limit=1)] == ["HumanDetect"]
    # Only what was reported in the last 30 s, and only once.
    assert events.take_recent("cam01", now.timestamp()) == "camera reported HumanDetect"
    assert events.take_recent("cam01", now.timestamp()) == ""
    assert [e["noted_on_upload"] for e in events.recent("cam01")] == [True, False]
    # Older than keep_days: gone at the next record.
    events.record(camera_event("cam02", "VideoLoss", now + timedelta(days=2)))
    assert [e["event"] for e in events.recent()] == ["VideoLoss"]


def test_a_camera_is_found_by_the_address_of_its_last_upload(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert store.camera_events.camera_at_address("10.0.0.7") is None
    for item_id, camera, ip in ((1, "cam01", "10.0.0.7"), (2, "cam02", "10.0.0.8")):
        upload = Upload(camera, Path(f"{item_id}.jpg"), datetime.now().astimezone(), ip)
        store.record(EventRecord(item_id, upload, "no_match"))
    assert store.camera_events.camera_at_address("10.0.0.7") == "cam01"
    assert store.camera_events.camera_at_address("10.0.0.8") == "cam02"
