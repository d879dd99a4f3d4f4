"""What asking the queue's depth costs the FTP hook, per upload: an exact COUNT against the cached
recent_depth(), on a queue with 10 000 uploads waiting and 100 000 done.

    .venv/bin/python scripts/queue_depth_cost.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ipcam_analysis.store import Database
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import Upload

DONE, PENDING = 100_000, 10_000


def microseconds_per_call(function: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> int:
    database = Database(Path(tempfile.mkdtemp()) / "queue.db")
    queue = UploadQueue(database)
    now = datetime.now().astimezone()
    with database.transaction() as conn:
        conn.executemany(
            "INSERT INTO uploads (camera, path, original_name, remote_ip, received_at, state)"
            " VALUES ('cam', 'path', 'name', '', ?, ?)",
            [(now.isoformat(), "done" if n < DONE else "pending") for n in range(DONE + PENDING)],
        )
    old_count = "SELECT COUNT(*) FROM uploads WHERE state != 'done'"  # depth() before the cache
    upload = Upload("cam", Path("path"), now)
    print(f"{PENDING} waiting, {DONE} done; microseconds per call:")
    print(
        f"  COUNT(*) WHERE state != 'done'   {microseconds_per_call(lambda: database.query(old_count), 200):8.1f}"
    )
    print(f"  depth() (through the index)      {microseconds_per_call(queue.depth, 200):8.1f}")
    print(
        f"  recent_depth() (cached)          {microseconds_per_call(queue.recent_depth, 100_000):8.1f}"
    )
    print(
        f"  put()                            {microseconds_per_call(lambda: queue.put(upload), 2000):8.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
