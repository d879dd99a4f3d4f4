"""The suite on both backends: every test that keeps state (it uses tmp_path) runs on the embedded
SQLite file and local folders, and again on PostgreSQL (a fresh database per test on the
session's throw-away server) as nodes sharing a database use it. The service under test finds
its database through IPCAM_DATABASE_URL, as a container or a systemd unit would give it.

`pytest --backend sqlite` (or `postgresql`) runs one; tests marked `sqlite_only` are about the
SQLite file itself (its locks, a full disk under it, its schema upgrades)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ipcam_analysis.store import DATABASE_FILE
from ipcam_analysis.store.postgres import postgres_sql

BACKENDS = ("sqlite", "postgresql")
DATABASE_URL = "IPCAM_DATABASE_URL"
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
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file itself")
    config.addinivalue_line("markers", "postgresql_only: about nodes sharing a server")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--backend")
    backends = BACKENDS if chosen == "all" else (chosen,)
    if "tmp_path" not in metafunc.fixturenames or metafunc.definition.get_closest_marker(
        "sqlite_only"
    ):
        backends = ("sqlite",)
    if metafunc.definition.get_closest_marker("postgresql_only"):
        backends = ("postgresql",)
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = getattr(request, "param", "sqlite")
    if name == "postgresql":
        monkeypatch.setenv(DATABASE_URL, request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv(DATABASE_URL, raising=False)
    return name


def query_database(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read of the service's database as another program would make it: the SQLite file in
    data_dir, or the PostgreSQL database of this test."""
    url = os.environ.get(DATABASE_URL)
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(postgres_sql(sql), params).fetchall()]
    with closing(sqlite3.connect(data_dir / DATABASE_FILE, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


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
