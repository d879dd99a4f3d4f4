"""Several `ipcam-analysis` nodes as real processes sharing one PostgreSQL database (and one S3
bucket, when given), each with its own folder and its roles (`--role`), as on many machines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto
from harness.service import (
    ServiceProcess,
    base_config,
    service_environment,
    wait_until,
    write_config,
)

LEASE_SECONDS = 3  # the shortest allowed: a dead worker's items are taken over quickly


@dataclass
class Cluster:
    folder: Path
    moto: Moto
    database_url: str
    storage_url: str | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str, roles: str, **overrides: Any) -> ServiceProcess:
        """A node named `name` running `roles` ("ingest", "worker" or both); returns once it
        is ready (an ingest node: its FTP server listens)."""
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        config = base_config(folder, **{**self.config_overrides, **overrides})
        config["node_name"] = name
        config["database"] = {"lease_seconds": LEASE_SECONDS}
        config["web"] = {"enabled": False}
        environment = {"IPCAM_DATABASE_URL": self.database_url}
        if self.storage_url:
            environment["IPCAM_STORAGE_URL"] = self.storage_url
        process = ServiceProcess(
            ["-c", str(write_config(folder, config)), "-n", "--role", roles],
            folder,
            service_environment(self.moto, **environment),
        )
        self.nodes[name] = process
        if "ingest" in roles:
            process.address()
        else:
            wait_until(lambda: "Ready:" in process.output, 60, f"{name} to be ready")
        return process

    def output(self) -> str:
        return "\n".join(f"[{name}] {line}" for name, p in self.nodes.items() for line in p.lines)

    def taken_over(self) -> list[str]:
        """The log lines of workers taking over a dead worker's items."""
        return re.findall(r"Taking over .*", self.output())

    def stop(self) -> None:
        for process in self.nodes.values():
            if process.process.poll() is None:
                process.kill()


@pytest.fixture
def cluster(tmp_path: Path, aws: Moto, postgres_url: str) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, aws, postgres_url)
    yield nodes
    nodes.stop()
