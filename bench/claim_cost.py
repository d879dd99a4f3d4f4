#!/usr/bin/env python3
"""What one claim's SELECT costs as the queue deepens: the query queue.py runs for every item
(`state = 'pending' AND next_attempt_at <= now ORDER BY next_attempt_at, id LIMIT 1`), on
PostgreSQL (a throw-away server, with FOR UPDATE SKIP LOCKED as the workers run it) and on
SQLite, with N pending uploads behind --done finished ones. Found by bench/sim500.py:
PostgreSQL's CPU grew with the queue's depth, until schema 9's index (state, next_attempt_at,
id) let the ORDER BY be read from the index.

    .venv/bin/python bench/claim_cost.py                  # depths 100, 1000, 10000; 30 s
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.store import DATABASE_FILE, DatabaseSettings, open_database  # noqa: E402

CLAIM = (
    "SELECT * FROM uploads WHERE state = 'pending' AND next_attempt_at <= {now}"
    " ORDER BY next_attempt_at, id LIMIT 1{lock}"
)
ROW = "'cam01', '/x', 'x', '127.0.0.1', '2026-12-03T19:00:00+00:00'"
INSERT = "INSERT INTO uploads (camera, path, original_name, remote_ip, received_at, state) "
REPEATS = 50

Execute = Callable[[str], list[Any]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--done", type=int, default=30_000, help="finished uploads beside them")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    results = [*on_postgresql(args), *on_sqlite(args)]
    common.print_table(
        ["engine", "pending", "ms per claim"],
        [[r["engine"], r["pending"], r["ms"]] for r in results],
    )
    common.write_results("claim_cost", {"done": args.done, "results": results}, args.output)
    return 0


def measure(engine: str, execute: Execute, args: argparse.Namespace, lock: str) -> list[dict]:
    """For each depth: the table refilled, the claim's SELECT timed on the schema's indexes."""
    found = []
    for depth in args.depths:
        execute("DELETE FROM uploads")
        execute(f"{INSERT} SELECT {ROW}, 'done' FROM ({series(engine, args.done)}) AS s")
        execute(f"{INSERT} SELECT {ROW}, 'pending' FROM ({series(engine, depth)}) AS s")
        execute("ANALYZE uploads" if engine == "postgresql" else "ANALYZE")
        row = {"engine": engine, "pending": depth, "ms": timed(execute, lock)}
        found.append(row)
        print(row, file=sys.stderr)
    return found


def series(engine: str, count: int) -> str:
    if engine == "postgresql":
        return f"SELECT generate_series(1, {count})"
    return (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
        f" WHERE i < {count}) SELECT i FROM n"
    )


def timed(execute: Execute, lock: str) -> float:
    started = time.perf_counter()
    for _ in range(REPEATS):
        execute(CLAIM.format(now=time.time(), lock=lock))
    return round((time.perf_counter() - started) / REPEATS * 1000, 2)


def on_postgresql(args: argparse.Namespace) -> list[dict]:
    import psycopg

    from harness.postgres import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        url = server.create_database()
        open_database(DatabaseSettings(url=url), ROOT).close()  # the schema, migrated
        with psycopg.connect(url, autocommit=True) as connection:

            def execute(sql: str) -> list[Any]:
                cursor = connection.execute(sql)  # type: ignore[arg-type]
                return cursor.fetchall() if cursor.description else []

            return measure("postgresql", execute, args, " FOR UPDATE SKIP LOCKED")
    finally:
        server.remove()


def on_sqlite(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-claim-") as folder:
        open_database(DatabaseSettings(), Path(folder)).close()
        connection = sqlite3.connect(Path(folder) / DATABASE_FILE, isolation_level=None)
        try:
            return measure("sqlite", lambda sql: connection.execute(sql).fetchall(), args, "")
        finally:
            connection.close()


if __name__ == "__main__":
    sys.exit(main())
