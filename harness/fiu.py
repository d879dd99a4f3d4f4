"""libfiu's fiu-run and fiu-ctrl: a real process whose database writes fail (a full or read-only
disk) on demand, without mounting anything."""

from __future__ import annotations

import errno
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.mqtt import system_command

# SQLite writes its database and WAL with pwrite(); logs and uploaded files go through write(),
# so the service can still be watched while its database cannot be written.
DATABASE_WRITES = "posix/io/rw/pwrite"
ERRORS = {"full": errno.ENOSPC, "read-only": errno.EROFS}


@dataclass(frozen=True)
class FaultInjector:
    """Runs a command under `fiu-run -x` and switches failure points in it while it runs."""

    control: Path  # fiu's control pipes are this path plus "-PID.in" / "-PID.out"

    @property
    def wrapper(self) -> list[str]:
        return [system_command("fiu-run"), "-x", "-f", str(self.control)]

    def fail(self, pid: int, point: str, error: int) -> None:
        self._control(pid, f"enable name={point},failinfo={error}")

    def heal(self, pid: int, point: str) -> None:
        self._control(pid, f"disable name={point}")

    def _control(self, pid: int, command: str) -> None:
        subprocess.run(
            [system_command("fiu-ctrl"), "-f", str(self.control), "-c", command, str(pid)],
            check=True,
            capture_output=True,
            timeout=30,
        )
