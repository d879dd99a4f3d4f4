"""A throw-away PostgreSQL cluster (Debian's server programs) on a loopback port, for tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from harness.service import free_port

SUPERUSER = "ipcam"
# Debian keeps the server programs out of PATH, one folder per major version.
DEBIAN_BIN_DIRS = Path("/usr/lib/postgresql")
# initdb and the server refuse to run as root: as root, they run as Debian's `postgres` user.
SYSTEM_USER = "postgres"
# Speed over durability against power loss: the cluster is deleted after the session anyway.
# synchronous_commit stays on, so a commit survives a crash of the server (stop("immediate")),
# which tests simulate; without fsync it costs only a write.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    # Each test's service may hold a pool of its own; the default 100 leaves little room.
    "max_connections": "200",
}


def find_bin_dir() -> Path:
    """The folder with initdb and pg_ctl: Debian's newest version, else the one on PATH."""
    versions = sorted(
        (path for path in DEBIAN_BIN_DIRS.glob("*/bin") if (path / "initdb").is_file()),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)],
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL's initdb is missing: install Debian's postgresql package "
            "(scripts/install-system-packages does it as root)"
        )
    return Path(initdb).resolve().parent


class PostgresServer:
    """One cluster in a temporary folder; `create_database` gives each test its own database."""

    def __init__(self) -> None:
        self.bin_dir = find_bin_dir()
        self.as_system_user = os.geteuid() == 0
        # Directly under the temporary folder (not pytest's, which is private to its user):
        # the `postgres` user must reach its data and socket folders.
        self.root = Path(tempfile.mkdtemp(prefix="ipcam-pg-"))
        if self.as_system_user:
            shutil.chown(self.root, user=SYSTEM_USER)
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = free_port()
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        )
        settings = {
            **SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self.as_system_user:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        # cwd: the `postgres` user may not be allowed into the caller's folder.
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{self.server_log()}"
            )
        return result

    def server_log(self, last_lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-last_lines:])

    def start(self) -> None:
        """Start on the same port as before (a test may have stopped it to simulate an outage)."""
        self._run(
            "pg_ctl", "start", "--pgdata", str(self.data_dir), "--log", str(self.log_file), "--wait"
        )

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """`fast` closes the clients' connections; `immediate` is a crash (recovery at start)."""
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait")

    def is_running(self) -> bool:
        status = self._run("pg_ctl", "status", "--pgdata", str(self.data_dir), check=False)
        return status.returncode == 0

    def remove(self) -> None:
        """Stop at once, whatever state the tests left it in, and delete the cluster."""
        if self.is_running():
            stopped = self._run(
                "pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "immediate", check=False
            )
            if stopped.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            # The postmaster this harness started, by its id; its children exit with it.
            os.kill(pid, signal.SIGKILL)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """An autocommit connection (CREATE DATABASE cannot run in a transaction)."""
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)

    def create_database(self) -> str:
        """A new empty database with a unique name; its URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        with self.connect() as connection:
            # template0: never touched, so no other session can block the copy.
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop even if a test left connections open (a pool it did not close)."""
        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One cluster for the session (initdb takes a second or two); deleted at the end."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database for one test, dropped after it."""
    postgres_server.ensure_running()
    url = postgres_server.create_database()
    yield url
    # A test that stopped the server to simulate an outage may have failed before starting it.
    postgres_server.ensure_running()
    postgres_server.drop_database(database_name(url))
