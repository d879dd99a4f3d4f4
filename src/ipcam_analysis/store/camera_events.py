"""What cameras report themselves (XMeye alarms): recorded, listed, and noted on the next upload."""

from __future__ import annotations

from typing import Any

from ipcam_analysis.store.database import Database, Parameters, local_iso
from ipcam_analysis.values import CameraEvent

NOTE_WITHIN_SECONDS = 30.0  # a camera event is noted on the camera's next upload within this
MAX_NOTED_EVENTS, MAX_NOTED_NAME = 5, 60
MAX_NOTED_ROWS = 1000  # taken by one upload; any more, by the next


class CameraEventStore:
    """The camera_events table; old rows go with the event history's keep_days."""

    def __init__(self, database: Database, keep_days: float) -> None:
        self._db = database
        self._keep_seconds = keep_days * 86400

    def record(self, event: CameraEvent) -> int:
        """Store one camera event (its camera already known); returns its id."""
        received = event.received_at.timestamp()
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM camera_events WHERE received_at < $1", (received - self._keep_seconds,)
            )
            return self._db.insert(
                "camera_events",
                {
                    "camera": event.camera,
                    "remote_ip": event.remote_ip,
                    "received_at": received,
                    "event": event.event,
                    "status": event.status,
                    "channel": event.channel,
                    "serial_id": event.serial_id,
                    "camera_time": event.camera_time,
                    "details": event.details,
                },
            )

    def camera_at_address(self, remote_ip: str) -> str | None:
        """The camera whose latest upload came from this address, if any."""
        rows = self._db.query(
            "SELECT name FROM cameras WHERE last_remote_ip = $1 ORDER BY last_upload DESC LIMIT 1",
            (remote_ip,),
        )
        return rows[0][0] if rows else None

    def take_recent(self, camera: str, now: float) -> str:
        """ "camera reported X, Y" for the camera's events of the last NOTE_WITHIN_SECONDS not
        yet noted on an upload, now marked as noted; "" when there is none. At most
        MAX_NOTED_EVENTS names are listed, the rest counted: the note stays a line."""
        rows = self._db.query(
            "SELECT id, event FROM camera_events WHERE camera = $1 AND received_at >= $2"
            " AND attached = 0 ORDER BY id LIMIT $3",
            (camera, now - NOTE_WITHIN_SECONDS, MAX_NOTED_ROWS),
        )
        if not rows:
            return ""
        self._db.execute(
            "UPDATE camera_events SET attached = 1 WHERE camera = $1 AND attached = 0"
            " AND id BETWEEN $2 AND $3",
            (camera, rows[0]["id"], rows[-1]["id"]),
        )
        reported = list(dict.fromkeys(row["event"][:MAX_NOTED_NAME] for row in rows))
        more = len(reported) - MAX_NOTED_EVENTS
        listed = ", ".join(reported[:MAX_NOTED_EVENTS])
        return f"camera reported {listed}" + (f" and {more} more" if more > 0 else "")

    def recent(
        self, camera: str | None = None, before_id: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Newest first, for the dashboard and `GET /api/camera_events`."""
        clauses: list[str] = []
        params = Parameters()
        if camera:
            clauses.append(f"camera = {params.bind(camera)}")
        if before_id is not None:
            clauses.append(f"id < {params.bind(before_id)}")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._db.query(
            f"SELECT * FROM camera_events{where} ORDER BY id DESC LIMIT {params.bind(limit)}",
            params,
        )
        return [
            {
                "id": row["id"],
                "camera": row["camera"],
                "remote_ip": row["remote_ip"],
                "received_at": local_iso(row["received_at"]),
                "event": row["event"],
                "status": row["status"],
                "channel": row["channel"],
                "serial_id": row["serial_id"],
                "camera_time": row["camera_time"],
                "noted_on_upload": bool(row["attached"]),
            }
            for row in rows
        ]
