"""The event history: one event per processed upload, its pictures as given, and retention."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ipcam_analysis.store.camera_events import CameraEventStore
from ipcam_analysis.store.database import Database, Parameters, local_iso, upsert
from ipcam_analysis.store.exceptions import LearnedExceptions
from ipcam_analysis.store.retention import HistoryConfig, Retention, snapshot_key
from ipcam_analysis.store.storage import Storage
from ipcam_analysis.values import (
    ALERT,
    ERROR,
    Decision,
    Detection,
    EventPictures,
    NotifyOutcome,
    Upload,
    label_to_dict,
)

log = logging.getLogger(__name__)

# Where keep_pictures put an event's files: the picture's name, their bytes together, and the
# clip's name (names relative to `snapshots/`).
KeptPictures = tuple[str, int, str | None]

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000  # a bound for any caller; the API allows 500 (+1 to see if more exist)
EVENT_COLUMNS = (
    *("id", "camera", "received_at", "original_name", "file_size", "width", "height"),
    *("outcome", "reason", "detector", "detector_ms", "cloud_calls", "labels", "triggered"),
    # No "thumbnail": pictures are thumbnailed when a page first shows them (web/thumbnails.py);
    # the column names the files older versions drew, which retention still removes.
    *("notifications", "snapshot", "snapshot_bytes", "source", "note"),
    *("burst_id", "burst_size", "clip"),
)


@dataclass(frozen=True)
class EventRecord:
    """Everything the pipeline learned about one upload, whatever the outcome."""

    item_id: int
    upload: Upload
    outcome: str
    reason: str | None = None
    file_size: int | None = None
    pictures: EventPictures | None = None  # drawn by the pipeline; kept as they are
    detection: Detection | None = None
    decision: Decision | None = None
    notifications: Sequence[NotifyOutcome] = ()
    clip: bytes | None = None  # a video clip's file, kept beside its best frame
    clip_suffix: str = ""  # `.mp4`, `.mkv`...: the clip's container


@dataclass(frozen=True)
class EventFilter:
    """The filters of the events page and `GET /api/events`; every field optional."""

    camera: str | None = None
    label: str | None = None
    outcome: str | None = None
    burst: str | None = None  # the pictures of one e-mail
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    before_id: int | None = None  # paging: events older than this one
    limit: int = PAGE_SIZE

    def query(self) -> tuple[str, list[Any]]:
        """The SELECT for these filters, newest first.

        A label filter starts from that label's index, walked backwards: a page then costs the
        same at any depth, for common and rare labels alike (IN (subquery) built the whole list).
        """
        clauses: list[str] = []
        params = Parameters()
        source, order = "events e", "e.id"
        if self.label:
            source, order = "event_labels l JOIN events e ON e.id = l.event_id", "l.event_id"
            clauses.append(f"l.name = {params.bind(self.label)}")
        for column, value in (
            ("camera", self.camera),
            ("outcome", self.outcome),
            ("burst_id", self.burst),
        ):
            if value:
                clauses.append(f"e.{column} = {params.bind(value)}")
        if self.since is not None:
            clauses.append(f"e.received_at >= {params.bind(self.since)}")
        if self.until is not None:
            clauses.append(f"e.received_at < {params.bind(self.until)}")
        if self.before_id is not None:
            clauses.append(f"{order} < {params.bind(self.before_id)}")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        limit = params.bind(max(1, min(self.limit, MAX_PAGE_SIZE)))
        return f"SELECT e.* FROM {source}{where} ORDER BY {order} DESC LIMIT {limit}", params


class EventStore:
    """Writes events as the pipeline finishes uploads; reads them for the dashboard and the API."""

    def __init__(self, database: Database, storage: Storage, history: HistoryConfig) -> None:
        """`storage` keeps the pictures under `snapshots/` (and uploads in flight when shared)."""
        self._db = database
        self.storage = storage
        self._retention = Retention(database, storage, history)
        self.camera_events = CameraEventStore(database, history.keep_days)
        self.exceptions = LearnedExceptions(database)

    # --- writing -------------------------------------------------------------------------

    def record(
        self,
        record: EventRecord,
        kept: KeptPictures | None = None,
        also: Callable[[], None] | None = None,
    ) -> None:
        """Store the event (replacing an earlier record of the same upload) and its pictures,
        unless `keep_pictures` kept them already (`kept`); `also()` writes in the same
        transaction (the queue item closed)."""
        files = kept
        if files is None and record.pictures:
            files = self.keep_pictures(
                record.item_id, record.upload, record.pictures, record.clip, record.clip_suffix
            )
        detection, decision, upload = record.detection, record.decision, record.upload
        triggered = [m.label.name for m in decision.matched] if decision else []
        labels = [label_to_dict(label) for label in detection.labels] if detection else []
        received = upload.received_at.timestamp()
        with self._db.transaction() as conn:
            old = conn.execute(
                "SELECT snapshot_bytes FROM events WHERE id = $1", (record.item_id,)
            ).fetchone()
            conn.execute("DELETE FROM event_labels WHERE event_id = $1", (record.item_id,))
            conn.execute(
                upsert("events", EVENT_COLUMNS, ("id",)),
                (
                    record.item_id,
                    upload.camera,
                    received,
                    upload.original_name,
                    record.file_size,
                    record.pictures.width if record.pictures else None,
                    record.pictures.height if record.pictures else None,
                    record.outcome,
                    record.reason,
                    detection.detector if detection else None,
                    detection.elapsed_ms if detection else None,
                    detection.cloud_calls if detection else 0,
                    json.dumps(labels),
                    json.dumps(triggered),
                    json.dumps([_outcome_dict(n) for n in record.notifications]),
                    files[0] if files else None,
                    files[1] if files else 0,
                    upload.source,
                    upload.note,
                    upload.burst_id,
                    upload.burst_size,
                    files[2] if files else None,
                ),
            )
            # One row per label name (the label filter joins on it): a name a detector reports
            # twice keeps its best confidence.
            conn.executemany(
                "INSERT INTO event_labels (event_id, name, confidence, triggered) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (event_id, name) DO UPDATE SET"
                " confidence = CASE WHEN excluded.confidence > event_labels.confidence"
                " THEN excluded.confidence ELSE event_labels.confidence END,"
                " triggered = CASE WHEN excluded.triggered > event_labels.triggered"
                " THEN excluded.triggered ELSE event_labels.triggered END",
                [
                    (record.item_id, label["name"], label["confidence"], label["name"] in triggered)
                    for label in labels
                ],
            )
            self._update_camera(conn, record, received)
            if also is not None:
                also()
        self._retention.added((files[1] if files else 0) - (old[0] if old else 0))
        self.enforce_retention()

    def _update_camera(self, conn: Any, record: EventRecord, received: float) -> None:
        camera = record.upload.camera
        conn.execute(
            "INSERT INTO cameras (name, last_upload) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET last_upload = CASE"
            " WHEN cameras.last_upload > excluded.last_upload THEN cameras.last_upload"
            " ELSE excluded.last_upload END",
            (camera, received),
        )
        if record.upload.remote_ip:  # where its alarms come from too (see camera_events)
            conn.execute(
                "UPDATE cameras SET last_remote_ip = $1 WHERE name = $2 AND last_upload <= $3",
                (record.upload.remote_ip, camera, received),
            )
        if record.outcome == ALERT:
            conn.execute("UPDATE cameras SET last_alert = $1 WHERE name = $2", (received, camera))
        if record.outcome == ERROR:
            conn.execute(
                "UPDATE cameras SET last_error = $1, last_error_at = $2 WHERE name = $3",
                (record.reason, received, camera),
            )
        if record.pictures:
            conn.execute(
                "UPDATE cameras SET last_snapshot_event = $1 WHERE name = $2",
                (record.item_id, camera),
            )

    def keep_pictures(
        self,
        item_id: int,
        upload: Upload,
        pictures: EventPictures,
        clip: bytes | None = None,
        clip_suffix: str = "",
    ) -> KeptPictures | None:
        """The event's picture and a clip's file (None when they cannot be kept); the names kept
        are relative to `snapshots/`, and their sizes count against `max_snapshots_mb` together.
        Kept again under the same names by a later attempt."""
        day = upload.received_at.strftime("%Y-%m-%d")
        full_name = f"{day}/{item_id}.jpg"
        keys = [snapshot_key(full_name)]
        contents = [pictures.picture]
        clip_name = f"{day}/{item_id}{clip_suffix}" if clip else None
        if clip_name and clip:
            keys.append(snapshot_key(clip_name))
            contents.append(clip)
        try:
            for key, content in zip(keys, contents, strict=True):
                self.storage.write(key, content)
        except OSError as exc:
            # A full disk or a storage outage must not stop alerts: the event is kept without
            # its picture (and without a part written before, which nothing would ever remove).
            with suppress(OSError):
                self.storage.delete(keys)
            cause = exc.strerror or str(exc)
            log.warning("Cannot keep the snapshot of event %d: %s", item_id, cause)
            return None
        return full_name, sum(map(len, contents)), clip_name

    def enforce_retention(self, now: float | None = None, *, force_age_sweep: bool = False) -> None:
        self._retention.enforce(now, force_age_sweep=force_age_sweep)

    @property
    def snapshot_bytes(self) -> int:
        return self._retention.snapshot_bytes

    # --- reading -------------------------------------------------------------------------

    def events(self, filters: EventFilter) -> list[dict[str, Any]]:
        """Newest first; page with `before_id` = the last id of the previous page."""
        sql, params = filters.query()
        rows = self._db.query(sql, tuple(params))
        return [_event_dict(row) for row in rows]

    def event(self, event_id: int) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM events WHERE id = $1", (event_id,))
        return _event_dict(rows[0]) if rows else None

    def snapshot(
        self, event_id: int, *, thumbnail: bool = False, clip: bool = False
    ) -> Path | bytes | None:
        """The picture (or the clip, or the thumbnail an older version drew) of an event: its
        file on this machine, or its bytes from shared storage; None when it has none. Found
        through the database only: no client-given path is ever joined to a folder or a key.
        Raises OSError when shared storage cannot be reached."""
        column = "clip" if clip else "thumbnail" if thumbnail else "snapshot"
        rows = self._db.query(f"SELECT {column} FROM events WHERE id = $1", (event_id,))
        if not rows or not rows[0][0]:
            return None
        try:
            key = snapshot_key(rows[0][0])
        except FileNotFoundError:
            return None
        if not self.storage.shared:
            path = self.storage.local_path(key)
            return path if path is not None and path.is_file() else None
        try:
            return self.storage.read(key)
        except FileNotFoundError:
            return None

    def cameras(self, names: Sequence[str], now: float | None = None) -> list[dict[str, Any]]:
        """One entry per configured camera (and any camera seen before), with today's counts."""
        now = time.time() if now is None else now
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        # The latest picture may since have gone to retention: then the card shows none. What
        # it showed and why it alerted or not come with it.
        known = {
            row["name"]: dict(row)
            for row in self._db.query(
                "SELECT c.*, e.snapshot IS NOT NULL AS has_picture, e.outcome, e.reason,"
                " e.labels, e.triggered FROM cameras c"
                " LEFT JOIN events e ON e.id = c.last_snapshot_event"
            )
        }
        # Grouping by an expression keeps SQLite from grouping through the camera index, which
        # would read the whole history instead of today's rows (70 ms instead of 1 ms at 100 000
        # events).
        today = {
            row["camera"]: (row["uploads"], row["alerts"])
            for row in self._db.query(
                "SELECT camera || '' AS camera, COUNT(*) AS uploads,"
                " SUM(CASE WHEN outcome = 'alert' THEN 1 ELSE 0 END) AS alerts"
                " FROM events WHERE received_at >= $1 GROUP BY 1",
                (midnight.timestamp(),),
            )
        }
        result = []
        for name in dict.fromkeys([*names, *known]):
            state = known.get(name, {})
            uploads, alerts = today.get(name, (0, 0))
            last_upload = state.get("last_upload")
            result.append(
                {
                    "name": name,
                    "configured": name in names,
                    "last_upload": local_iso(last_upload),
                    "silent_seconds": None
                    if last_upload is None
                    else round(max(0, now - last_upload), 1),
                    "last_alert": local_iso(state.get("last_alert")),
                    "last_error": state.get("last_error"),
                    "last_error_at": local_iso(state.get("last_error_at")),
                    "last_snapshot_event": (
                        state["last_snapshot_event"] if state.get("has_picture") else None
                    ),
                    "last_snapshot": _pictured(state) if state.get("has_picture") else None,
                    "uploads_today": uploads,
                    "alerts_today": alerts or 0,
                }
            )
        return result

    def usage(self, days: int = 30, now: float | None = None) -> list[dict[str, Any]]:
        """Per local day and camera: uploads, alerts, cloud calls (oldest day first)."""
        now = time.time() if now is None else now
        start = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        start -= timedelta(days=days - 1)
        # The local days' bounds come from here: this node's time zone, whatever the database
        # server's, and days of 23 or 25 hours where the clocks change.
        midnights = [start + timedelta(days=n) for n in range(days + 1)]
        params = Parameters()
        local_days = " UNION ALL ".join(
            f"SELECT {params.bind(day.strftime('%Y-%m-%d'))} AS day,"
            f" {params.bind(day.timestamp())} AS starts, {params.bind(following.timestamp())} AS ends"
            for day, following in itertools.pairwise(midnights)
        )
        rows = self._db.query(
            f"SELECT d.day AS day, e.camera AS camera, COUNT(*) AS uploads,"
            " SUM(CASE WHEN e.outcome = 'alert' THEN 1 ELSE 0 END) AS alerts,"
            f" SUM(e.cloud_calls) AS cloud_calls FROM ({local_days}) d JOIN events e"
            " ON e.received_at >= d.starts AND e.received_at < d.ends"
            " GROUP BY d.day, e.camera ORDER BY d.day, e.camera",
            params,
        )
        return [dict(row) for row in rows]


def _pictured(state: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a camera's latest picture, its reason, and its labels without boxes."""
    return {
        "outcome": state["outcome"],
        "reason": state["reason"],
        "labels": [
            {"name": label["name"], "confidence": label["confidence"]}
            for label in json.loads(state["labels"])
        ],
        "triggered": json.loads(state["triggered"]),
    }


def _outcome_dict(outcome: NotifyOutcome) -> dict[str, Any]:
    return {"notifier": outcome.notifier, "ok": outcome.ok, "detail": outcome.detail}


def _event_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "camera": row["camera"],
        "source": row["source"],
        "received_at": local_iso(row["received_at"]),
        "original_name": row["original_name"],
        "file_size": row["file_size"],
        "width": row["width"],
        "height": row["height"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "detector": row["detector"],
        "detector_ms": row["detector_ms"],
        "cloud_calls": row["cloud_calls"],
        "labels": json.loads(row["labels"]),
        "triggered": json.loads(row["triggered"]),
        "notifications": json.loads(row["notifications"]),
        "has_snapshot": bool(row["snapshot"]),
        "clip": row["clip"],  # its name, whose suffix says the container
        "note": row["note"],
        "burst_id": row["burst_id"],
        "burst_size": row["burst_size"],
    }
