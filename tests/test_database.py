"""The database on both engines: queries reach each engine as written, the queue's claim order is
the same on both, the schema is the same on both and on files older versions made, and a SQLite
user's service never loads PostgreSQL's driver."""

from __future__ import annotations

import ast
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto
from harness.backends import DATABASE_URL
from harness.service import DATA, base_config, service_environment, write_config
from ipcam_analysis.store.database import (
    Database,
    DatabaseSettings,
    SqliteDatabase,
    open_database,
)
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.store.schema import SCHEMA_VERSION
from ipcam_analysis.values import Upload


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """The test's backend: SQLite in tmp_path/data, or its PostgreSQL database."""
    opened = open_database(DatabaseSettings(url=os.environ.get(DATABASE_URL)), tmp_path / "data")
    yield opened
    opened.close()


def an_upload(name: str) -> Upload:
    return Upload("cam01", Path(name), datetime.now().astimezone(), "192.0.2.7", name)


def test_question_marks_and_dollars_in_literals_and_comments_are_text(database: Database) -> None:
    rows = database.query(
        "SELECT 'why? $2 100%' AS said, $1 AS value -- is ? a parameter? is $2?\n", ("kept",)
    )
    assert [tuple(row) for row in rows] == [("why? $2 100%", "kept")]
    item = UploadQueue(database).put(an_upload("a.jpg"))
    database.execute("UPDATE uploads SET note = 'what? $1' /* ? */ WHERE id = $1", (item,))
    assert database.query("SELECT note FROM uploads WHERE id = $1", (item,))[0][0] == "what? $1"


def test_an_item_claimed_before_leases_existed_is_taken_over_first(database: Database) -> None:
    """A row left working by a version without leases (schema 8 added them) has no lease at
    all: it counts as expired the longest, before one whose lease ran out a minute ago."""
    queue = UploadQueue(database, owner="node/1")
    expired, unleased = queue.put(an_upload("expired.jpg")), queue.put(an_upload("unleased.jpg"))
    database.execute(
        "UPDATE uploads SET state = 'working', claimed_by = 'gone/1', lease_until = $1"
        " WHERE id = $2",
        (time.time() - 60, expired),
    )
    database.execute(
        "UPDATE uploads SET state = 'working', claimed_by = 'older/1' WHERE id = $1", (unleased,)
    )
    first, second = queue.claim(), queue.claim()
    assert first is not None and second is not None
    assert (first.id, second.id) == (unleased, expired)


def sqlite_schema(database: SqliteDatabase) -> dict[str, Any]:
    """Each table's columns (name, type affinity as SQLite itself gives it, NOT NULL, default,
    key) and its indexes, as a database of any version keeps them."""
    tables = [
        row[0] for row in database.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]
    columns = {
        table: [
            (
                name,
                database.query(f"SELECT typeof(CAST('1' AS {declared}))")[0][0],
                *(notnull, default, key),
            )
            for _, name, declared, notnull, default, key in database.query(
                "SELECT * FROM pragma_table_info($1)", (table,)
            )
        ]
        for table in tables
    }
    indexes = {
        row[0]: " ".join(row[1].split())
        for row in database.query("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        if row[1]
    }
    return {"columns": columns, "indexes": indexes}


@pytest.mark.embedded_only
@pytest.mark.parametrize("version", [1, 11])
def test_a_database_an_older_version_made_gets_the_same_schema(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript((DATA / f"database_v{version}.sql").read_text(encoding="utf-8"))
        old.execute(f"PRAGMA user_version = {version}")
    old.close()
    upgraded, new = SqliteDatabase(path), SqliteDatabase(tmp_path / "new.db")
    try:
        assert upgraded.schema_version() == new.schema_version() == SCHEMA_VERSION
        assert sqlite_schema(upgraded) == sqlite_schema(new)
    finally:
        upgraded.close()
        new.close()


# Each table's columns (type as written in the schema, the auto-numbered id aside; NOT NULL, which
# a key implies) and its indexes other than the keys', as each engine describes them.
SQLITE_SCHEMA = (
    "SELECT m.name, c.name,"
    " CASE WHEN c.pk = 1 AND c.type = 'INTEGER' THEN 'auto id' ELSE lower(c.type) END,"
    ' c."notnull" OR c.pk > 0'
    " FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table'"
    " UNION SELECT tbl_name, name, 'index', 1 FROM sqlite_master"
    " WHERE type = 'index' AND sql IS NOT NULL"
)
POSTGRES_SCHEMA = (
    "SELECT table_name, column_name,"
    " CASE WHEN is_identity = 'YES' THEN 'auto id' ELSE data_type END,"
    " CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END"
    " FROM information_schema.columns"
    " WHERE table_schema = 'public' AND table_name != 'schema_version'"
    " UNION SELECT tablename, indexname, 'index', 1 FROM pg_indexes"
    " WHERE schemaname = 'public' AND indexname != tablename || '_pkey'"
)


@pytest.mark.shared_only
def test_the_schema_is_the_same_on_both_engines(tmp_path: Path, database: Database) -> None:
    local = SqliteDatabase(tmp_path / "sqlite.db")
    try:
        on_sqlite = {tuple(row) for row in local.query(SQLITE_SCHEMA)}
    finally:
        local.close()
    on_postgres = {tuple(row) for row in database.query(POSTGRES_SCHEMA)}
    assert ("learned_exceptions", "left", "double precision", 1) in on_sqlite
    assert on_postgres == on_sqlite


SERVICE_MODULES = """
import sys
from pathlib import Path
from ipcam_analysis.config import load_config
from ipcam_analysis.service.app import build_service

service = build_service(load_config(Path(sys.argv[1])))
service.start()
service.stop()
print(sorted(name for name in sys.modules if name.startswith("psycopg")))
"""


@pytest.mark.embedded_only
def test_a_sqlite_users_service_never_loads_psycopg(tmp_path: Path, aws: Moto) -> None:
    config = write_config(tmp_path, base_config(tmp_path))
    run = subprocess.run(
        [sys.executable, "-c", SERVICE_MODULES, str(config)],
        env=service_environment(aws),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert ast.literal_eval(run.stdout.strip().splitlines()[-1]) == []
