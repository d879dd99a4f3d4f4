"""The database: SQLite in data_dir by default (WAL: one writer, a reader per thread), or a shared
PostgreSQL server for many nodes (`store/postgres.py`, imported only then).

Queries are written once and reach each engine as written: both parse `$1, $2, ...` themselves
(PostgreSQL's own placeholders; to SQLite, parameters named `$1`, `$2`, bound by name), so a `?`
or a `$1` inside a literal or a comment stays text, and nothing rewrites SQL at run time. What
does differ is written per engine in its class: how a new row's id comes back, the claim's row
lock, per-key locks, where the schema version is kept, how an auto-numbered key is spelled."""

from __future__ import annotations

import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from ipcam_analysis.settings import StrictModel
from ipcam_analysis.store.database_url import DatabaseUrl
from ipcam_analysis.store.schema import migrations

log = logging.getLogger(__name__)

DATABASE_FILE = "ipcam_analysis.db"  # in data_dir
Params = Sequence[Any]  # for $1, $2, ... in order


class DatabaseUnavailable(OSError):
    """The database server out of reach (store/postgres.py raises it for psycopg's errors)."""


# A database or disk that cannot be written, or a database server out of reach (an OSError too):
# no fault of the upload, which is tried again later.
STORAGE_ERRORS = (sqlite3.OperationalError, OSError)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a transaction hands out: either engine's connection, taking `$n` parameters."""

    def execute(self, sql: str, params: Params = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Params], /) -> object: ...


def local_iso(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 in the server's time zone, as the API and pages show it."""
    return None if epoch is None else datetime.fromtimestamp(epoch).astimezone().isoformat()


def placeholders(count: int) -> str:
    """`$1, $2, ...`: `count` parameters."""
    return ", ".join(f"${number}" for number in range(1, count + 1))


class Parameters(list[Any]):
    """The parameters of a query put together piece by piece: `bind(value)` adds a value and
    gives its placeholder, so the numbers always match."""

    def bind(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def insert_statement(table: str, columns: Sequence[str]) -> str:
    """An INSERT of `columns` (quoted: a column may be named by a reserved word)."""
    names = ", ".join(f'"{column}"' for column in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({placeholders(len(columns))})"


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT of `columns` that replaces the other columns of a row with the same `key`."""
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    conflict = ", ".join(f'"{column}"' for column in key)
    return f"{insert_statement(table, columns)} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"


class DatabaseSettings(StrictModel):
    """`database:` where the queue, the history and what the filters remember live."""

    # postgresql://user:password@host:5432/name, shared by every node; unset: SQLite in data_dir.
    # The environment variable IPCAM_DATABASE_URL overrides it (keeps the password out of YAML).
    url: DatabaseUrl | None = None
    pool_size: int = Field(10, ge=2, le=200)  # connections per process (PostgreSQL)
    # A worker renews its claims every third of this; a dead worker's items wait this long.
    lease_seconds: float = Field(30, ge=3, le=3600)

    @field_validator("url")
    @classmethod
    def _postgresql_only(cls, url: DatabaseUrl | None) -> DatabaseUrl | None:
        text = url.get_secret_value() if url is not None else ""
        if text and urlsplit(text).scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql:// (leave it out for SQLite in data_dir)")
        return url if text else None


def open_database(settings: DatabaseSettings, data_dir: Path) -> Database:
    """The shared PostgreSQL database when `database.url` is set, else the SQLite file."""
    if settings.url:
        # Only here: a SQLite user's process never loads psycopg.
        from ipcam_analysis.store.postgres import PostgresDatabase

        return PostgresDatabase(settings.url.get_secret_value(), settings.pool_size)
    return SqliteDatabase(data_dir / DATABASE_FILE)


class Database(ABC):
    """Statements from any thread. Inside `transaction()`, this thread's execute() and query()
    join it (so its reads see its own writes), and a nested transaction() is part of the outer
    one."""

    # How the engine spells an `id` key it numbers itself, in the schema's CREATE TABLEs.
    auto_id: str
    # Appended to a claim's SELECT: lets workers on other nodes pass over a claimed row.
    skip_locked = ""

    def __init__(self) -> None:
        self._active = threading.local()  # this thread's open transaction, if any

    @property
    def _joined(self) -> Connection | None:
        return getattr(self._active, "conn", None)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Statements that commit together or not at all."""
        if self._joined is not None:
            yield self._joined
            return
        with self._begin() as conn:
            self._active.conn = conn
            try:
                yield conn
            finally:
                self._active.conn = None

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """One write statement, committed when it returns (or with the transaction it joins)."""
        with self.transaction() as conn:
            return conn.execute(sql, params)

    @abstractmethod
    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        """A new row of a table with an `id` key (committed, or with the transaction it
        joins); its id."""

    def query(self, sql: str, params: Params = ()) -> list[Any]:
        """Rows (by name or position) of a read that sees every commit made before it starts."""
        if self._joined is not None:
            return self._joined.execute(sql, params).fetchall()
        return self._read(sql, params)

    @abstractmethod
    def announce_put(self) -> None:
        """Tell other nodes' workers that an upload was queued."""

    def wait_for_puts(self, on_put: Callable[[], None], stopping: threading.Event) -> None:
        """Call `on_put()` whenever another node announces a put, until `stopping` is set."""
        stopping.wait()

    @abstractmethod
    def lock(self, key: str) -> None:
        """Inside a transaction: wait for, then hold until commit, the lock named `key`, so
        transactions deciding about the same thing (a camera, the budget) take turns."""

    def migrate(self) -> None:
        with self.transaction() as conn:
            version = self._schema_version(conn)
            steps = migrations(self.auto_id)[version:]
            for number, statements in enumerate(steps, start=version + 1):
                log.info("Upgrading the database schema to version %d", number)
                for statement in statements:
                    conn.execute(statement)
                self._set_schema_version(conn, number)

    def schema_version(self) -> int:
        with self.transaction() as conn:
            return self._schema_version(conn)

    @abstractmethod
    def _begin(self) -> AbstractContextManager[Connection]: ...

    @abstractmethod
    def _read(self, sql: str, params: Params) -> list[Any]: ...

    @abstractmethod
    def _schema_version(self, conn: Connection) -> int: ...

    @abstractmethod
    def _set_schema_version(self, conn: Connection, number: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _SqliteConnection:
    """sqlite3's connection taking `$n` parameters in order: SQLite reads `$1` as a parameter
    named `1`, bound here from a mapping (binding named parameters from a sequence is deprecated
    since Python 3.12)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = (), /) -> sqlite3.Cursor:
        return self.conn.execute(sql, by_number(params))

    def executemany(self, sql: str, rows: Sequence[Params], /) -> sqlite3.Cursor:
        return self.conn.executemany(sql, [by_number(row) for row in rows])


def by_number(params: Params) -> dict[str, Any]:
    """Parameters for sqlite3 to bind to `$1, $2, ...` (named `1`, `2`, ...)."""
    return {str(number): value for number, value in enumerate(params, start=1)}


class SqliteDatabase(Database):
    """One write connection shared under a lock (SQLite has one writer at a time anyway) and a
    read connection per thread, so the dashboard never waits behind the workers' writes (WAL
    lets readers see the last commit while a write is under way)."""

    # A rowid alias: SQLite numbers it.
    auto_id = "id INTEGER PRIMARY KEY"

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._writer = self._connect()
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
        self._writer.conn.execute("PRAGMA journal_mode=WAL")
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.migrate()

    def _connect(self) -> _SqliteConnection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return _SqliteConnection(conn)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        # IMMEDIATE takes the write lock up front: no other thread or process writes in between,
        # so every transaction is already serialised and lock() has nothing to add.
        with self._lock:
            self._writer.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                self._writer.conn.execute("ROLLBACK")
                raise
            self._writer.conn.execute("COMMIT")

    def lock(self, key: str) -> None:
        """Nothing to add: BEGIN IMMEDIATE already lets one transaction run at a time."""

    def announce_put(self) -> None:
        """No other node: the processes of this machine are told through their own pipes."""

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        if self._joined is not None:
            return self._joined.execute(sql, params)
        with self._lock:  # autocommit: one statement needs no BEGIN/COMMIT round
            return self._writer.execute(sql, params)

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        # lastrowid, not RETURNING: SQLite has RETURNING only since 3.35 (RHEL 9 ships 3.34).
        with self.transaction():
            cursor = self._writer.execute(insert_statement(table, list(row)), list(row.values()))
            return int(cursor.lastrowid or 0)

    def _read(self, sql: str, params: Params) -> list[Any]:
        return self._reader().execute(sql, params).fetchall()

    def _reader(self) -> _SqliteConnection:
        reader: _SqliteConnection | None = getattr(self._readers, "conn", None)
        if reader is None:
            reader = self._connect()
            reader.conn.execute("PRAGMA query_only=ON")
            self._readers.conn = reader
            with self._readers_lock:
                self._all_readers.append(reader.conn)
        return reader

    def _schema_version(self, conn: Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _set_schema_version(self, conn: Connection, number: int) -> None:
        conn.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        with self._readers_lock:
            readers, self._all_readers = self._all_readers, []
        for conn in readers:
            conn.close()
        with self._lock:
            self._writer.conn.close()
