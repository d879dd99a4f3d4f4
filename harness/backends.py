"""The suite on both backends: every test that keeps state (it uses tmp_path) runs on the embedded
one (SQLite file and local folders), and again on PostgreSQL + S3 as nodes sharing them use it:
a fresh database per test on the session's throw-away PostgreSQL server, and a fresh prefix in
a bucket on moto's S3. The service under test finds them through IPCAM_DATABASE_URL and
IPCAM_STORAGE_URL, as a container or a systemd unit would give them.

`pytest --backend sqlite` (or `postgresql-s3`) runs one; tests marked `embedded_only` are about
the embedded backend itself (SQLite's locks, its schema upgrades, a full disk under it, files in
local folders), or about the listeners under abuse (floods, password guessing), where the
backend only stores what they let through and a second run would add minutes, not coverage."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from harness.aws import REGION
from ipcam_analysis.store import DATABASE_FILE
from ipcam_analysis.store.database import by_number

BACKENDS = ("sqlite", "postgresql-s3")
DATABASE_URL = "IPCAM_DATABASE_URL"
STORAGE_URL = "IPCAM_STORAGE_URL"
BUCKET = "ipcam-tests"
TABLES = (
    *("uploads", "events", "event_labels", "cameras", "camera_frames", "stationary_objects"),
    *("cooldowns", "cloud_calls", "budget_notices", "burst_frames", "camera_error_streaks"),
    "camera_events",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=(*BACKENDS, "all"),
        default="all",
        help="run the tests that keep state on this backend only (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only: about SQLite or local folders themselves, keeps nothing, or is about the"
        " listeners (floods, guessing), where the backend plays no part",
    )
    config.addinivalue_line("markers", "shared_only: about nodes sharing PostgreSQL and S3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--backend")
    backends = BACKENDS if chosen == "all" else (chosen,)
    if "tmp_path" not in metafunc.fixturenames or metafunc.definition.get_closest_marker(
        "embedded_only"
    ):
        backends = ("sqlite",)
    if metafunc.definition.get_closest_marker("shared_only"):
        backends = ("postgresql-s3",)
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = getattr(request, "param", "sqlite")
    if name == "postgresql-s3":
        monkeypatch.setenv(DATABASE_URL, request.getfixturevalue("postgres_url"))
        aws = request.getfixturevalue("aws")  # a clean moto, boto3 pointed at it
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        monkeypatch.setenv(STORAGE_URL, f"s3://{BUCKET}/{request.node.name[:60]}")
        # S3 by its own endpoint: a test cutting AWS_ENDPOINT_URL (a cloud outage) keeps it.
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.endpoint)
    else:
        monkeypatch.delenv(DATABASE_URL, raising=False)
        monkeypatch.delenv(STORAGE_URL, raising=False)
    return name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A case marked `embedded_only` through its parameters is not run on the shared backend
    (deselected, as a function so marked is never parametrised with it)."""
    shared = [
        item
        for item in items
        if item.get_closest_marker("embedded_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend") == "postgresql-s3"  # type: ignore[attr-defined]
    ]
    if shared:
        config.hook.pytest_deselected(items=shared)
        items[:] = [item for item in items if item not in shared]


def query_database(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read of the service's database as another program would make it: the SQLite file in
    data_dir, or the PostgreSQL database of this test (parameters `$1, $2, ...`, as the store's)."""
    url = os.environ.get(DATABASE_URL)
    if url:
        with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    with closing(sqlite3.connect(data_dir / DATABASE_FILE, timeout=30)) as conn:
        return conn.execute(sql, by_number(params)).fetchall()


@contextmanager
def write_lock_held(data_dir: Path) -> Iterator[None]:
    """What another program writing to the database does to the service: a backup or a `sqlite3`
    shell holding SQLite's write lock, or on PostgreSQL a maintenance job locking the history."""
    url = os.environ.get(DATABASE_URL)
    if url:
        with psycopg.connect(url) as conn, conn.transaction():
            # Every table the service writes, as SQLite's one write lock covers them all.
            conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            yield
        return
    with closing(sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


REFUSED_ROW = "disk full: no room for the next picture of the e-mail"


@contextmanager
def second_picture_of_a_mail_refused(data_dir: Path) -> Iterator[None]:
    """The database refusing a write part-way through an e-mail, as a disk filling up would: a
    trigger another program adds fails the insert of a message's second picture (a second row
    of the same burst), whatever the service does around it."""
    url = os.environ.get(DATABASE_URL)
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_second_picture() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF EXISTS (SELECT 1 FROM uploads WHERE burst_id = NEW.burst_id) THEN"
                f" RAISE EXCEPTION '{REFUSED_ROW}' USING ERRCODE = 'disk_full'; END IF;"
                " RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_second_picture BEFORE INSERT ON uploads FOR EACH ROW"
                " WHEN (NEW.burst_id IS NOT NULL) EXECUTE FUNCTION refuse_second_picture()"
            )
            try:
                yield
            finally:
                conn.execute("DROP TRIGGER refuse_second_picture ON uploads")
                conn.execute("DROP FUNCTION refuse_second_picture()")
        return
    with closing(sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_second_picture BEFORE INSERT ON uploads"
            " WHEN NEW.burst_id IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM uploads WHERE burst_id = NEW.burst_id)"
            f" BEGIN SELECT RAISE(ABORT, '{REFUSED_ROW}'); END"
        )
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER refuse_second_picture")


def shared_upload_keys() -> list[str]:
    """The uploads in flight kept in this test's bucket (none on the embedded backend)."""
    url = os.environ.get(STORAGE_URL)
    if not url:
        return []
    prefix = url.removeprefix(f"s3://{BUCKET}/")
    answer = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=BUCKET, Prefix=f"{prefix}/uploads/"
    )
    return sorted(item["Key"] for item in answer.get("Contents", []))
