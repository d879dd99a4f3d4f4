"""The durable upload queue in the database: put, claim (with a lease its owner renews), remember
progress, finish, retry, recover. An item whose owner died (a killed process, a lost node) is
claimed again once its lease runs out."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ipcam_analysis.store.database import Database
from ipcam_analysis.values import (
    CameraUpload,
    Decision,
    Detection,
    Upload,
    decision_from_dict,
    decision_to_dict,
    detection_from_dict,
    detection_to_dict,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # a claim not renewed for this long is another worker's to take
# What a claim takes ($1: now): an item whose lease ran out (its worker died), else one due. No
# lease at all: claimed before leases existed (schema 8), by a process gone; such a row counts as
# expired the longest, on both engines (which put NULLs at opposite ends of an order).
LEASE_RAN_OUT = "state = 'working' AND COALESCE(lease_until, 0) < $1"
DUE = "state = 'pending' AND next_attempt_at <= $1"


@dataclass(frozen=True)
class QueuedItem:
    """A claimed upload with what earlier attempts already achieved (so nothing is done twice)."""

    id: int
    upload: Upload
    attempts: int  # attempts before this one
    detection: Detection | None
    notified: frozenset[str]
    # An alert decided by an earlier attempt (its repeats already remembered), and why labels
    # or objects were dropped then: a retry notifies it without deciding again.
    decision: Decision | None = None
    filtered: tuple[str, ...] = ()

    @property
    def about(self) -> str:
        """How every log line names an upload: `cam01 (event 42, 2026/12/03/x.jpg)`."""
        return f"{self.upload.camera} (event {self.id}, {self.upload.original_name})"


class UploadQueue:
    """Every accepted upload is a row before the FTP hook returns; workers claim rows in order."""

    def __init__(
        self,
        database: Database,
        owner: str = "",
        on_put: Callable[[], None] | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        """`owner` names this process's claims (node/process); `on_put()` tells other processes
        that claim from the same database that there is work."""
        self._db = database
        self._wakeup = threading.Condition()
        self._owner = owner
        self.lease_seconds = lease_seconds
        self._on_put = on_put
        # recent_depth(): the last count, when it was made, plus the puts since.
        self._depth_lock = threading.Lock()
        self._recent_depth = 0
        self._depth_counted_at: float | None = None

    def put(self, upload: Upload) -> int:
        return self.put_many([upload])[0]

    def put_many(self, uploads: Sequence[Upload]) -> list[int]:
        """Uploads received together (the pictures of one e-mail) in one transaction: all
        queued, or none (raises), so a camera told to send them again never doubles one."""
        # Insert and count under one lock, so a recount in between never misses these rows.
        with self._depth_lock:
            with self._db.transaction():
                ids = [self._db.insert("uploads", _upload_row(upload)) for upload in uploads]
                # Inside: PostgreSQL delivers it at the commit, and a failure undoes the rows
                # instead of failing after them (the camera would send queued pictures again).
                self._db.announce_put()
            self._recent_depth += len(ids)
        with self._wakeup:
            self._wakeup.notify(len(ids))
        if self._on_put is not None:
            self._on_put()
        return ids

    def recover(self, owner_prefix: str = "") -> int:
        """After a crash, items that were being worked on by owners whose names start with
        `owner_prefix` (this node's, one dead process's) go back at once, without waiting for
        their leases to run out."""
        cursor = self._db.execute(
            "UPDATE uploads SET state = 'pending' WHERE state = 'working'"
            " AND substr(COALESCE(claimed_by, ''), 1, $1) = $2",
            (len(owner_prefix), owner_prefix),
        )
        if cursor.rowcount:
            log.info("Resuming %d upload(s) interrupted by the last shutdown", cursor.rowcount)
        return cursor.rowcount

    def claim(self) -> QueuedItem | None:
        """The oldest item whose lease ran out (its worker died), else the oldest item that is
        due, now held by this owner; None if nothing is due. Workers on other nodes pass over
        a row being claimed (skip_locked) instead of waiting for it."""
        now = time.time()
        # A read first: an idle worker's look must not take SQLite's one writer from the others.
        if not self._db.query(
            f"SELECT 1 WHERE EXISTS (SELECT 1 FROM uploads WHERE {LEASE_RAN_OUT})"
            f" OR EXISTS (SELECT 1 FROM uploads WHERE {DUE})",
            (now,),
        ):
            return None
        with self._db.transaction() as conn:
            row = (
                conn.execute(
                    f"SELECT * FROM uploads WHERE {LEASE_RAN_OUT}"
                    f" ORDER BY COALESCE(lease_until, 0), id LIMIT 1{self._db.skip_locked}",
                    (now,),
                ).fetchone()
                or conn.execute(
                    f"SELECT * FROM uploads WHERE {DUE}"
                    f" ORDER BY next_attempt_at, id LIMIT 1{self._db.skip_locked}",
                    (now,),
                ).fetchone()
            )
            if row is None:
                return None
            if row["state"] == "working":
                log.warning(
                    "Taking over %s (event %d): its worker %s stopped renewing its claim",
                    row["camera"],
                    row["id"],
                    row["claimed_by"],
                )
            conn.execute(
                "UPDATE uploads SET state = 'working', claimed_by = $1, lease_until = $2"
                " WHERE id = $3",
                (self._owner, now + self.lease_seconds, row["id"]),
            )
        detection, decided = row["detection"], json.loads(row["decision"] or "null")
        return QueuedItem(
            id=row["id"],
            upload=Upload(
                camera=row["camera"],
                path=Path(row["path"]),
                received_at=datetime.fromisoformat(row["received_at"]),
                remote_ip=row["remote_ip"],
                original_name=row["original_name"],
                source=row["source"],
                remove_when_done=bool(row["remove_when_done"]),
                home=None if row["home"] is None else Path(row["home"]),
                note=row["note"],
                burst_id=row["burst_id"],
                burst_size=row["burst_size"],
                stored_key=row["stored_key"],
                clip=bool(row["clip"]),
            ),
            attempts=row["attempts"],
            detection=detection_from_dict(json.loads(detection)) if detection else None,
            notified=frozenset(json.loads(row["notified"])),
            decision=decision_from_dict(decided["decision"]) if decided else None,
            filtered=tuple(decided["filtered"]) if decided else (),
        )

    def renew_leases(self) -> int:
        """Extend every claim this owner holds (called well within the lease by its pool)."""
        return self._db.execute(
            "UPDATE uploads SET lease_until = $1 WHERE state = 'working' AND claimed_by = $2",
            (time.time() + self.lease_seconds, self._owner),
        ).rowcount

    def wait_for_work(self, timeout: float) -> None:
        """Sleep until something is put, or the timeout (used to pick up due retries)."""
        with self._wakeup:
            self._wakeup.wait(timeout)

    def wait_for_puts(self, stopping: threading.Event) -> None:
        """Wake this process's idle workers on every put, here or on another node."""
        self._db.wait_for_puts(self.wake_all, stopping)

    def wake_all(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    def save_detection(self, item_id: int, detection: Detection) -> None:
        """Kept so a retry (e.g. after a mail outage) does not pay for the cloud call again."""
        self._db.execute(
            "UPDATE uploads SET detection = $1 WHERE id = $2",
            (json.dumps(detection_to_dict(detection)), item_id),
        )

    def save_decision(
        self,
        item_id: int,
        decision: Decision,
        filtered: list[str],
        clip_seconds: float | None = None,
    ) -> None:
        """Kept with the repeats it remembered (in one transaction), so a retry after a failed
        notification sends this alert instead of finding it in its own cooldown; a clip's
        length with it, for the snapshots of its motion (rules/motion.py)."""
        data = {"decision": decision_to_dict(decision), "filtered": filtered}
        self._db.execute(
            "UPDATE uploads SET decision = $1, clip_seconds = $2 WHERE id = $3",
            (json.dumps(data), clip_seconds, item_id),
        )

    def undecided_uploads(
        self, upload: Upload, item_id: int, start: float, end: float, *, clips_only: bool = False
    ) -> list[CameraUpload]:
        """The upload's camera's other uploads (or clips) received between `start` and `end`
        (epoch seconds) that are queued with no decision saved yet, but for those of its own
        burst (the pictures of one e-mail are decided together: rules/bursts.py)."""
        which = "state <> 'done' AND decision IS NULL AND (burst_id IS NULL OR burst_id <> $5)"
        which += " AND clip = 1" if clips_only else ""
        burst = (upload.burst_id or "",)
        return self._camera_uploads(upload.camera, item_id, start, end, which, burst)

    def alerted_uploads(
        self, camera: str, item_id: int, start: float, end: float, *, clips: bool
    ) -> list[CameraUpload]:
        """The camera's other clips (or snapshots) received between `start` and `end` that
        alerted (their alert decided, sent or not)."""
        kind = "clip_seconds IS NOT NULL" if clips else "clip_seconds IS NULL"
        return self._camera_uploads(camera, item_id, start, end, f"decision IS NOT NULL AND {kind}")

    def _camera_uploads(
        self,
        camera: str,
        item_id: int,
        start: float,
        end: float,
        which: str,
        more: tuple[object, ...] = (),
    ) -> list[CameraUpload]:
        """`which` may name parameters from $5 on, given in `more`."""
        rows = self._db.query(
            "SELECT id, received_ts, state, attempts, decision, clip_seconds FROM uploads"
            f" WHERE camera = $1 AND received_ts BETWEEN $2 AND $3 AND id <> $4 AND {which}",
            (camera, start, end, item_id, *more),
        )
        return [_camera_upload(row) for row in rows]

    def mark_notified(self, item_id: int, notifier: str) -> None:
        """Recorded right after a notifier succeeds, so a restart never sends it twice."""
        with self._db.transaction() as conn:
            self._db.lock(f"upload {item_id}")
            row = conn.execute("SELECT notified FROM uploads WHERE id = $1", (item_id,)).fetchone()
            done = sorted({*json.loads(row["notified"]), notifier})
            conn.execute(
                "UPDATE uploads SET notified = $1 WHERE id = $2", (json.dumps(done), item_id)
            )

    def finish(self, item_id: int, outcome: str, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE uploads SET state = 'done', outcome = $1, last_error = $2, finished_at = $3,"
            " attempts = attempts + 1 WHERE id = $4",
            (outcome, error, time.time(), item_id),
        )

    def retry_later(self, item_id: int, error: str, delay_seconds: float) -> None:
        self._db.execute(
            "UPDATE uploads SET state = 'pending', attempts = attempts + 1, last_error = $1,"
            " next_attempt_at = $2 WHERE id = $3",
            (error, time.time() + delay_seconds, item_id),
        )

    def hold(self, item_id: int, why: str, delay_seconds: float) -> None:
        """Back to the queue for a while without counting an attempt: it waits for others."""
        self._db.execute(
            "UPDATE uploads SET state = 'pending', last_error = $1, next_attempt_at = $2 WHERE id = $3",
            (why, time.time() + delay_seconds, item_id),
        )

    def unfinished_paths(self) -> set[str]:
        return {row[0] for row in self._db.query("SELECT path FROM uploads WHERE state != 'done'")}

    def depth(self) -> int:
        """Items accepted and not finished."""
        # IN rather than != 'done' counts through the (state, ...) index, not the whole history.
        rows = self._db.query("SELECT COUNT(*) FROM uploads WHERE state IN ('pending', 'working')")
        return int(rows[0][0])

    def recent_depth(self, max_age_seconds: float = 1.0) -> int:
        """depth() counted at most max_age_seconds ago, plus the puts since: never below the
        true depth, and cheap enough for the FTP server to ask before every upload."""
        now = time.monotonic()
        with self._depth_lock:
            counted_at = self._depth_counted_at
            if counted_at is None or now - counted_at > max_age_seconds:
                self._recent_depth = self.depth()
                self._depth_counted_at = now
            return self._recent_depth

    def oldest_pending_age(self) -> float | None:
        """Seconds since the oldest unfinished item was accepted; None when the queue is empty."""
        # IN rather than != 'done' lets the (state, ...) index skip the finished history.
        rows = self._db.query(
            "SELECT received_at FROM uploads WHERE state IN ('pending', 'working')"
            " ORDER BY id LIMIT 1"
        )
        if not rows:
            return None
        return max(0.0, time.time() - datetime.fromisoformat(rows[0][0]).timestamp())

    def last_analysed_at(self) -> float | None:
        """When the newest upload with a detection was finished (epoch seconds): what any
        process's workers last got from a detector."""
        # Newest first by id, stopping at the first match, instead of scanning for a maximum.
        rows = self._db.query(
            "SELECT finished_at FROM uploads WHERE state = 'done' AND detection IS NOT NULL"
            " ORDER BY id DESC LIMIT 1"
        )
        return rows[0][0] if rows else None

    def seconds_until_next_due(self) -> float | None:
        row = self._db.query("SELECT MIN(next_attempt_at) FROM uploads WHERE state = 'pending'")[0][
            0
        ]
        return None if row is None else max(0.0, row - time.time())


def _upload_row(upload: Upload) -> dict[str, object]:
    """The uploads row of an upload."""
    return {
        "camera": upload.camera,
        "path": str(upload.path),
        "original_name": upload.original_name,
        "remote_ip": upload.remote_ip,
        "received_at": upload.received_at.isoformat(),
        "received_ts": upload.received_at.timestamp(),
        "clip": upload.clip,
        "source": upload.source,
        "home": None if upload.home is None else str(upload.home),
        "remove_when_done": upload.remove_when_done,
        "note": upload.note,
        "burst_id": upload.burst_id,
        "burst_size": upload.burst_size,
        "stored_key": upload.stored_key,
    }


def _camera_upload(row: Any) -> CameraUpload:
    saved = json.loads(row["decision"] or "null")
    decision = saved["decision"] if saved else None
    alerted = decision["matched"] if decision and decision["alert"] else []
    return CameraUpload(
        id=row["id"],
        received=row["received_ts"],
        undecided=row["state"] != "done" and saved is None,
        failed_before=row["attempts"] > 0,
        alerted=frozenset(match["label"]["name"].casefold() for match in alerted),
        clip_seconds=row["clip_seconds"],
    )
