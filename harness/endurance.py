"""For the endurance and abuse tests: a detector with a fixed latency (for `run_service`), the
process's memory, a small filesystem, and load from a second process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from harness.service import RunningService
from ipcam_analysis.service.app import Service
from ipcam_analysis.store import SqliteDatabase
from ipcam_analysis.values import Detection, Snapshot, WatchedLabels

REPOSITORY = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


class FixedLatencyDetector:
    """Stands in for a cloud detector: answers "nothing found" after `latency_seconds`.

    `gate`, when given, holds every answer until it is set (bounded by `gate_timeout`).
    """

    def __init__(
        self,
        kind: str,
        latency_seconds: float = 0.0,
        gate: threading.Event | None = None,
        gate_timeout: float = 120.0,
    ) -> None:
        self.kind = kind
        self._latency = latency_seconds
        self._gate = gate
        self._gate_timeout = gate_timeout

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        started = time.monotonic()
        if self._gate is not None:
            self._gate.wait(self._gate_timeout)
        time.sleep(self._latency)
        return Detection(self.kind, (), (time.monotonic() - started) * 1000, cloud_calls=1)

    def close(self) -> None:
        """Nothing to free."""


StartService = Callable[..., RunningService]  # the run_service fixture


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def rss_bytes() -> int:
    """This process's resident memory, as the kernel counts it."""
    return _status_bytes("VmRSS")


class PeakMemory:
    """The highest resident memory of this process from now until stop(): the kernel's
    high-water mark, reset here, or (where it cannot be reset) samples taken in a thread."""

    def __init__(self, interval_seconds: float = 0.2) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self._kernel_peak = True
        except OSError:
            self._kernel_peak = False
        self.baseline = rss_bytes()
        self.peak = self.baseline
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, rss_bytes())

    def stop(self) -> int:
        """Stop watching; the growth of the peak over the baseline, in bytes."""
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_bytes())
        if self._kernel_peak:
            self.peak = max(self.peak, _status_bytes("VmHWM"))
        return self.peak - self.baseline


def jpeg_bytes(width: int = 320, height: int = 240, padding: int = 0) -> bytes:
    """A small valid JPEG, as a camera's secondary stream sends; `padding` bytes after its end
    make it bigger without changing the picture (decoders stop at the end marker)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 60)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue() + b"\0" * padding


def run_load(mode: str, spec: dict[str, Any], spec_dir: Path) -> subprocess.Popen[str]:
    """Start harness/load_client.py in a second process; finish it with `load_result`."""
    spec_file = spec_dir / f"{mode}-load.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), str(REPOSITORY / "src")])}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.load_client", mode, str(spec_file)],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def load_ended(process: subprocess.Popen[str], within: float) -> bool:
    """Whether the load process ends within `within` seconds (a poll that paces probes)."""
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        return False
    return True


def load_result(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """What the load's clients saw (see load_client.Tally)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"the load process did not finish within {timeout:.0f} s") from None
    assert process.returncode == 0, err
    return json.loads(out)


def integrity(service: Service) -> str:
    """SQLite's own check, or on PostgreSQL amcheck over every index of the schema: "ok"."""
    database = service.database
    if isinstance(database, SqliteDatabase):
        return str(database.query("PRAGMA integrity_check")[0][0])
    database.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    database.query(
        "SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid ="
        " i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid ="
        " c.relnamespace WHERE a.amname = 'btree' AND n.nspname = 'public'"
    )  # raises on a corrupt index
    return "ok"
