"""History retention: events older than keep_days go (with what the queue kept of their uploads),
and the oldest pictures beyond max_snapshots_mb (their events stay, without a picture)."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from ipcam_analysis.settings import StrictModel
from ipcam_analysis.store.database import Database, placeholders
from ipcam_analysis.store.storage import Storage, checked_key

log = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"  # the folder (or key prefix) of the kept pictures
AGE_SWEEP_SECONDS = 600  # how often old events are looked for; size is checked on every write
# How often the pictures' total is read back from the database: other processes and nodes
# writing to the same history are counted within this.
RECOUNT_SECONDS = 60


class HistoryConfig(StrictModel):
    """Events and their snapshots in data_dir; the defaults fit a 16 GB SD card with room to spare."""

    keep_days: float = Field(30, gt=0)
    max_snapshots_mb: float = Field(2000, gt=0)


@dataclass
class _SnapshotBudget:
    total_bytes: int = 0
    counted_at: float = 0.0  # monotonic time of the last count from the database
    last_age_sweep: float | None = None  # None: sweep at the first write after start-up


class Retention:
    """Keeps the history within its age and size; one pass at a time."""

    def __init__(self, database: Database, storage: Storage, history: HistoryConfig) -> None:
        self._db = database
        self._storage = storage
        self._history = history
        self._lock = threading.Lock()
        # One retention pass at a time: two workers finishing together must not both delete.
        self._retention_lock = threading.Lock()
        self._budget = _SnapshotBudget()
        self._recount()

    def _recount(self) -> None:
        total = self._db.query("SELECT COALESCE(SUM(snapshot_bytes), 0) FROM events")[0][0]
        with self._lock:
            self._budget.total_bytes = int(total)
            self._budget.counted_at = time.monotonic()

    def added(self, size_bytes: int) -> None:
        """Pictures of this many bytes were written (negative: removed)."""
        with self._lock:
            self._budget.total_bytes += size_bytes

    @property
    def snapshot_bytes(self) -> int:
        with self._lock:
            return self._budget.total_bytes

    def enforce(self, now: float | None = None, *, force_age_sweep: bool = False) -> None:
        """Drop events older than keep_days; drop the oldest snapshots beyond max_snapshots_mb."""
        now = time.time() if now is None else now
        with self._retention_lock:
            last_sweep = self._budget.last_age_sweep
            if (
                force_age_sweep
                or last_sweep is None
                or time.monotonic() - last_sweep > AGE_SWEEP_SECONDS
            ):
                cutoff = now - self._history.keep_days * 86400
                self._delete_snapshots("received_at < $1", (cutoff,), delete_events=True)
                self._budget.last_age_sweep = time.monotonic()
            if time.monotonic() - self._budget.counted_at > RECOUNT_SECONDS:
                self._recount()
            self._trim_to_size()

    def _trim_to_size(self) -> None:
        """Oldest pictures first; their events stay, without a picture."""
        with self._lock:
            over = self._budget.total_bytes - self._history.max_snapshots_mb * 1024 * 1024
        while over > 0:
            rows = self._db.query(
                "SELECT id, snapshot_bytes FROM events WHERE snapshot IS NOT NULL"
                " ORDER BY id LIMIT 100"
            )
            if not rows:
                break
            chosen, freed = [], 0
            for row in rows:
                chosen.append(row["id"])
                freed += row["snapshot_bytes"]
                if freed >= over:
                    break
            if not self._delete_snapshots(
                f"id IN ({placeholders(len(chosen))})", tuple(chosen), delete_events=False
            ):
                break
            over -= freed

    def _delete_snapshots(
        self, where: str, params: tuple[Any, ...], *, delete_events: bool
    ) -> bool:
        """False when the pictures could not be deleted: their rows stay for the next pass."""
        rows = self._db.query(
            f"SELECT id, snapshot, thumbnail, clip, snapshot_bytes FROM events WHERE {where}",
            params,
        )
        if not rows:
            return True
        keys = []
        for row in rows:
            for name in filter(None, (row["snapshot"], row["thumbnail"], row["clip"])):
                with suppress(FileNotFoundError):  # a name no writer made: nothing to delete
                    keys.append(snapshot_key(name))
        try:
            self._storage.delete(keys)
        except OSError as exc:
            log.warning("History retention postponed: %s", exc)
            return False
        ids = [row["id"] for row in rows]
        with self._db.transaction() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = placeholders(len(chunk))
                if delete_events:
                    conn.execute(f"DELETE FROM event_labels WHERE event_id IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)
                    # What the queue kept of them goes too: an event's id is its upload's.
                    conn.execute(
                        f"DELETE FROM uploads WHERE id IN ({marks}) AND state = 'done'", chunk
                    )
                    conn.execute(f"DELETE FROM burst_frames WHERE item_id IN ({marks})", chunk)
                else:
                    conn.execute(
                        "UPDATE events SET snapshot = NULL, thumbnail = NULL, clip = NULL,"
                        " snapshot_bytes = 0"
                        f" WHERE id IN ({marks})",
                        chunk,
                    )
        with self._lock:
            self._budget.total_bytes -= sum(row["snapshot_bytes"] for row in rows)
        if delete_events:
            log.info("History retention: %d event(s) past keep_days removed", len(rows))
        else:
            log.info("History retention: %d snapshot(s) removed to fit max_snapshots_mb", len(rows))
        return True


def snapshot_key(name: str) -> str:
    """Where a snapshot named in the events table (`2026-11-23/42.jpg`) is kept; raises
    FileNotFoundError for a name the store never writes (`..`, absolute)."""
    return checked_key(f"{SNAPSHOTS}/{name}")
