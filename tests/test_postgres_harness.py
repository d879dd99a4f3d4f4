"""The throw-away PostgreSQL cluster of harness/postgres.py: a database per test, an outage on
demand, and the ICU collation the PostgreSQL store relies on."""

from __future__ import annotations

from typing import Literal

import psycopg
import pytest

from harness.postgres import PostgresServer, database_name

NOCASE = (
    "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
)


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_has_a_database_of_its_own(postgres_url: str, turn: int) -> None:
    # Both turns make the same table: the second would clash in a shared database.
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE cameras (name text PRIMARY KEY)")
        connection.execute("INSERT INTO cameras VALUES (%s)", (f"cam{turn}",))
        assert connection.execute("SELECT name FROM cameras").fetchall() == [(f"cam{turn}",)]


def test_a_dropped_database_is_gone(postgres_server: PostgresServer) -> None:
    name = database_name(postgres_server.create_database())
    postgres_server.drop_database(name)
    with postgres_server.connect() as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert found.fetchone() is None


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_an_outage_breaks_connections_and_a_restart_ends_it(
    postgres_server: PostgresServer, postgres_url: str, mode: Literal["fast", "immediate"]
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE uploads (id int)")
        connection.execute("INSERT INTO uploads VALUES (1)")
        postgres_server.stop(mode)
        with pytest.raises(psycopg.OperationalError):
            connection.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=5)
    postgres_server.start()
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT id FROM uploads").fetchall() == [(1,)]


def test_the_case_insensitive_icu_collation_can_be_made(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(NOCASE)
        connection.execute("CREATE TABLE cameras (name text COLLATE nocase UNIQUE)")
        connection.execute("INSERT INTO cameras VALUES ('Garden-Cam')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute("INSERT INTO cameras VALUES ('garden-cam')")
    with psycopg.connect(postgres_url) as connection:
        found = connection.execute("SELECT name FROM cameras WHERE name = 'GARDEN-CAM'")
        assert found.fetchall() == [("Garden-Cam",)]
