"""The learned exceptions ("not a Person" on the dashboard) and how often each matched, as SQL.
No decisions: rules/exceptions.py makes them."""

from __future__ import annotations

from typing import Any

from ipcam_analysis.store.database import Database, local_iso
from ipcam_analysis.values import Box, LearnedException


class LearnedExceptions:
    """Per camera, in the database: they survive restarts and serve every node."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def learn(
        self,
        camera: str,
        label: str,
        box: Box,
        fingerprint: int,
        *,
        confidence: float,
        event_id: int,
        now: float,
    ) -> int:
        """Remember a box marked "not a <label>"; the id of the exception (the one already
        learned when the same box of the same event is marked twice)."""
        with self._db.transaction() as conn:
            same = conn.execute(
                'SELECT id FROM learned_exceptions WHERE event_id = $1 AND label = $2 AND "left" = $3'
                " AND top = $4 AND width = $5 AND height = $6",
                (event_id, label, box.left, box.top, box.width, box.height),
            ).fetchone()
            if same is not None:
                return int(same[0])
            return self._db.insert(
                "learned_exceptions",
                {
                    "camera": camera,
                    "label": label,
                    "left": box.left,
                    "top": box.top,
                    "width": box.width,
                    "height": box.height,
                    "fingerprint": f"{fingerprint:064x}",
                    "confidence": confidence,
                    "event_id": event_id,
                    "marked_at": now,
                },
            )

    def of_camera(self, camera: str) -> list[LearnedException]:
        rows = self._db.query(
            "SELECT * FROM learned_exceptions WHERE camera = $1 ORDER BY id", (camera,)
        )
        return [
            LearnedException(
                row["id"],
                row["label"],
                Box(row["left"], row["top"], row["width"], row["height"]),
                int(row["fingerprint"], 16),
                row["marked_at"],
            )
            for row in rows
        ]

    def matched(self, exception_ids: frozenset[int], item_id: int, now: float) -> None:
        """These exceptions dropped a detection of this upload (counted once per upload)."""
        if not exception_ids:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO learned_exception_matches (exception_id, item_id, matched_at)"
                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(exception_id, item_id, now) for exception_id in sorted(exception_ids)],
            )

    def forget(self, exception_id: int) -> bool:
        """Undo a mark; False when there was no such exception."""
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM learned_exception_matches WHERE exception_id = $1", (exception_id,)
            )
            cursor = conn.execute("DELETE FROM learned_exceptions WHERE id = $1", (exception_id,))
            return cursor.rowcount == 1

    def listing(self) -> list[dict[str, Any]]:
        """Every camera's exceptions for the dashboard, by camera, newest first, with how often
        and when each last matched."""
        rows = self._db.query(
            "SELECT x.*, COUNT(m.item_id) AS matches, MAX(m.matched_at) AS last_matched"
            " FROM learned_exceptions x"
            " LEFT JOIN learned_exception_matches m ON m.exception_id = x.id"
            " GROUP BY x.id ORDER BY x.camera, x.id DESC"
        )
        return [
            {
                "id": row["id"],
                "camera": row["camera"],
                "label": row["label"],
                "box": {key: row[key] for key in ("left", "top", "width", "height")},
                "confidence": row["confidence"],
                "event_id": row["event_id"],
                "marked_at": local_iso(row["marked_at"]),
                "matches": row["matches"],
                "last_matched": local_iso(row["last_matched"]),
            }
            for row in rows
        ]

    def marks(self) -> list[tuple[str, float]]:
        """(label, confidence) of every box marked "not a <label>"."""
        rows = self._db.query("SELECT label, confidence FROM learned_exceptions ORDER BY id")
        return [(row[0], row[1]) for row in rows]
