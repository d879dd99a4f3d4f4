"""SQLite's write transactions as the service's write connection runs them: every BEGIN, and
every write statement run on its own (autocommit), for tests/test_pipeline_writes.py and
bench/alert_cpu.py."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ipcam_analysis.store import Database, SqliteDatabase

WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})


class WriteCounter:
    """Counts write transactions from the statements SQLite traces on one connection."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []
        self._in_transaction = False
        self._lock = threading.Lock()

    def __call__(self, statement: str) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        with self._lock:
            if verb == "BEGIN":
                self._in_transaction = True
                self.count += 1
            elif verb in ("COMMIT", "ROLLBACK", "END"):
                self._in_transaction = False
            elif verb in WRITE_VERBS and not self._in_transaction:
                self.count += 1
            self.statements.append(statement)

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.statements.clear()

    @property
    def written(self) -> str:
        """Every statement traced, one a line (for an assertion's message)."""
        with self._lock:
            return "\n".join(self.statements)


@contextmanager
def counted_writes(database: Database) -> Iterator[WriteCounter]:
    """The write transactions on the service's SQLite write connection while inside."""
    assert isinstance(database, SqliteDatabase), "SQLite's single writer is what is counted"
    counter = WriteCounter()
    writer: sqlite3.Connection = database._writer.conn
    writer.set_trace_callback(counter)
    try:
        yield counter
    finally:
        writer.set_trace_callback(None)
