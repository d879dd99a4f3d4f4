"""Cameras uploading over real FTP at once (ftplib, one session per upload, as cameras do), each
upload's start and 226 timed, and a probe timing FTP logins meanwhile: for
bench/side_by_side.py."""

from __future__ import annotations

import ftplib
import io
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import common


@dataclass
class Load:
    """Each camera's uploads: (monotonic start, monotonic 226)."""

    times: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def started(self) -> float:
        return min(start for times in self.times.values() for start, _ in times)

    @property
    def accepted(self) -> int:
        return sum(len(times) for times in self.times.values())


def upload(
    port: int, camera: common.Camera, password: str, name: str, data: bytes
) -> tuple[float, float]:
    """One camera upload on a new session (connect, log in, STOR, QUIT): (start, 226) times."""
    started = time.monotonic()
    ftp = ftplib.FTP(timeout=120, source_address=(camera.source_ip, 0))
    try:
        ftp.connect(common.LOOPBACK, port)
        ftp.login(camera.name, password)
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))  # returns on the 226
        accepted = time.monotonic()
        ftp.quit()
    finally:
        ftp.close()
    return started, accepted


def run_load(
    port: int, passwords: dict[str, str], pictures: Sequence[bytes], first_number: int = 0
) -> Load:
    """Every camera (cam01…, from its own loopback address) uploads its share of `pictures`
    back to back on new sessions, all cameras at once; names are numbered from `first_number`."""
    cameras = common.cameras(len(passwords))
    per_camera = len(pictures) // len(cameras)
    load = Load({camera.name: [] for camera in cameras})
    start_together = threading.Barrier(len(cameras))

    def camera_loop(index: int, camera: common.Camera) -> None:
        start_together.wait()
        for number in range(per_camera):
            picture = pictures[index * per_camera + number]
            name = f"{camera.name}-{first_number + number:04d}.jpg"
            try:
                times = upload(port, camera, passwords[camera.name], name, picture)
            except (OSError, ftplib.Error) as exc:
                load.errors.append(f"{camera.name} {name}: {exc}")
                continue
            load.times[camera.name].append(times)

    threads = [
        threading.Thread(target=camera_loop, args=(index, camera), daemon=True)
        for index, camera in enumerate(cameras)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load


PROBE_ADDRESS = "127.0.9.9"  # no camera's: the probe waits for the server, not for a camera
PROBE_EVERY_SECONDS = 0.1


def _probe(connection: Any, _stop: Any, port: int, user: str, password: str) -> None:
    """A child process (so the probe does not wait for the benchmark's own threads): a login
    on a new session every PROBE_EVERY_SECONDS until the parent asks for the results; sends
    the times (ms) taken by connect, banner, USER and PASS, and the errors."""
    logins: list[float] = []
    errors: list[str] = []
    connection.send("ready")
    while not connection.poll(PROBE_EVERY_SECONDS):
        started = time.perf_counter()
        try:
            with ftplib.FTP(timeout=60, source_address=(PROBE_ADDRESS, 0)) as ftp:
                ftp.connect(common.LOOPBACK, port)
                ftp.login(user, password)
                logins.append((time.perf_counter() - started) * 1000)
        except (OSError, ftplib.Error) as exc:
            errors.append(str(exc))
    connection.send((logins, errors))


@contextmanager
def probed_logins(port: int, user: str, password: str) -> Iterator[dict[str, Any]]:
    """FTP logins timed while inside; the dict yielded is filled when the block ends: the
    logins' percentiles in ms (n, p50, ..., max) and the first errors."""
    found: dict[str, Any] = {}
    with common.child_server(_probe, port, user, password) as connection:
        if not connection.poll(common.CHILD_START_SECONDS):
            raise TimeoutError("the login probe did not start")
        connection.recv()
        yield found
        connection.send("results")
        logins, errors = connection.recv() if connection.poll(120) else ([], ["no report"])
    found.update(common.percentiles(logins), errors=errors[:3])
