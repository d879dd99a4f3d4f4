"""One service per data_dir: a lock held while it runs, so a second one started on the same folder
says so and leaves before doing anything in the service's name (MQTT, the queue, the files)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ipcam_analysis.errors import UserError

LOCK_FILE = "ipcam_analysis.lock"


class AlreadyRunningError(UserError):
    """Another service holds the data_dir; its message is the whole line the user sees."""


class DataDirLock:
    """An exclusive `flock` on data_dir/ipcam_analysis.lock, which holds the holder's pid. The
    kernel lets it go when the process ends, however it ends: no stale lock after a crash."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises AlreadyRunningError when another process holds it."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise AlreadyRunningError(
                f"Another ipcam-analysis is already running with data_dir {self._data_dir}{pid}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Closing the file lets the lock go; the file stays (removing it would race a start)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
