"""The whole service, in this process or as a real `ipcam-analysis` process, on loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.aws import REGION, Moto, aws_environment
from harness.ftp import upload_with_ftplib
from ipcam_analysis.config import load_config
from ipcam_analysis.service.app import Service, build_service
from ipcam_analysis.service.logsetup import remove_logging
from ipcam_analysis.values import ROLES

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
PASSWORDS = {"cam01": "pw-cam01-secret", "cam02": "pw-cam02-secret"}
CLI = [sys.executable, "-m", "ipcam_analysis.cli"]


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll generously; tests bound waits, they do not time things."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def base_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A config for tests: port 0, folders under tmp_path, SES to moto, quick retries."""
    config: dict[str, Any] = {
        "labels": ["Person", "Vehicle"],
        "aws_region": REGION,
        "data_dir": str(tmp_path / "data"),
        "workers": 2,
        "ftp_server": {
            "root_dir": str(tmp_path / "ftp"),
            "host": "127.0.0.1",
            "port": 0,
            "remove_files": True,
            "users": dict(PASSWORDS),
        },
        "email": {
            "transport": "ses",
            "sender_email": "sender@example.com",
            "sender_name": "Ipcam Analysis",
            "recipients": ["owner@example.com"],
        },
        "rekognition": {"min_confidence_percent": 80, "max_labels": 10},
        "retry": {"first_delay_seconds": 0.2, "max_delay_seconds": 1},
        "web": {"port": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def upload(
    address: tuple[str, int],
    camera: str,
    data: bytes,
    remote_path: str = "snapshot.jpg",
    *,
    passive: bool = True,
    password: str | None = None,
) -> None:
    """Upload like a camera: log in, make the dated folders, STOR."""
    host, port = address
    upload_with_ftplib(
        host, port, camera, password or PASSWORDS[camera], remote_path, data, passive
    )


@dataclass
class RunningService:
    service: Service

    @property
    def address(self) -> tuple[str, int]:
        return self.service.ftp.address

    def wait_idle(self, timeout: float = 60.0) -> None:
        wait_until(lambda: self.service.queue.depth() == 0, timeout, "the queue to drain")

    def outcomes(self) -> list[tuple[str, str]]:
        rows = self.service.database.query(
            "SELECT original_name, outcome FROM uploads WHERE state = 'done' ORDER BY id"
        )
        return [(row[0], row[1]) for row in rows]


@pytest.fixture
def run_service(tmp_path: Path, aws: Moto) -> Iterator[Callable[..., RunningService]]:
    """Start the service in this process, built as the CLI builds it (logging to data_dir and
    secret masking included), from a config built with `base_config` overrides;
    `make_detector(kind)` replaces its detectors (a fake one with a fixed latency, say), `roles`
    are those of `--role` (several nodes can run in one test)."""
    started: list[Service] = []

    def start(
        make_detector: Callable[[str], Any] | None = None,
        roles: Iterable[str] = ROLES,
        **overrides: Any,
    ) -> RunningService:
        config = load_config(write_config(tmp_path, base_config(tmp_path, **overrides)))
        service = build_service(config, roles=roles, make_detector=make_detector)
        service.start()
        started.append(service)
        return RunningService(service)

    yield start
    for service in started:
        service.stop()
    remove_logging()


class ServiceProcess:
    """`ipcam-analysis` as a real process: its console log tells the FTP port."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], wrapper: Sequence[str] = ()
    ) -> None:
        """`wrapper`: a command the service runs under, such as `fiu-run -x`."""
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*wrapper, *CLI, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def address(self, timeout: float = 60.0) -> tuple[str, int]:
        def found() -> tuple[str, int] | None:
            match = re.search(r"FTP server listening on ([\d.]+):(\d+)", self.output)
            if self.process.poll() is not None and not match:
                raise AssertionError(f"service exited early:\n{self.output}")
            return (match.group(1), int(match.group(2))) if match else None

        return wait_until(found, timeout, "the FTP listener")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def service_environment(moto: Moto, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_environment(moto.endpoint))
    env["PYTHONPATH"] = os.pathsep.join(
        str(p) for p in (Path(__file__).resolve().parents[1] / "src",)
    )
    env.update(extra)
    return env


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    processes: list[ServiceProcess] = []

    def start(
        args: list[str], env: dict[str, str], cwd: Path | None = None, wrapper: Sequence[str] = ()
    ) -> ServiceProcess:
        process = ServiceProcess(args, cwd or tmp_path, env, wrapper)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.process.poll() is None:
            process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_test_image(name: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name, target)
    return target
