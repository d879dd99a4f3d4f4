"""What one attempt owes the database (its detection, its decision, the channels that sent),
written with the next transaction the attempt commits anyway: SQLite has one writer, and a
transaction for each step cost more than the step (docs/performance.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ipcam_analysis.store import CameraHistory


class PendingWrites:
    """Writes waiting for a transaction: made at the end of the next one."""

    def __init__(self, memory: CameraHistory) -> None:
        self._memory = memory
        self._writes: list[Callable[[], None]] = []

    def add(self, write: Callable[[], None]) -> None:
        self._writes.append(write)

    def __bool__(self) -> bool:
        return bool(self._writes)

    def make(self) -> None:
        """The writes, inside a transaction the caller holds; `forget()` them once it has
        committed (until then, a failure leaves them pending)."""
        for write in self._writes:
            write()

    def forget(self) -> None:
        self._writes.clear()

    @contextmanager
    def committing(self, *about: str) -> Iterator[None]:
        """A transaction (CameraHistory.atomically) whose block runs first, then the pending
        writes: a block that waits for a lock holds no row of them meanwhile."""
        with self._memory.atomically(*about):
            yield
            self.make()
        self.forget()

    def commit(self) -> None:
        """The pending writes in a transaction of their own, when there are any."""
        if self._writes:
            with self.committing():
                pass
