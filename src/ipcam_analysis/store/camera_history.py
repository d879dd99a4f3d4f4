"""What the filters remember between uploads, as SQL: the last frame's hash, alerted objects,
cooldowns, cloud calls, budget notices and error streaks. No decisions: the rules make them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ipcam_analysis.rules.bursts import BurstFrame
from ipcam_analysis.store.database import Database, Parameters, upsert
from ipcam_analysis.values import Box, MatchedLabel, RememberedObject

# burst_frames.alerted: 0 for a frame that did not decide for its burst, else its verdict.
_ALERTED, _SUPPRESSED = 1, -1
_BURST_VERDICTS = {_ALERTED: True, _SUPPRESSED: False}


class CameraHistory:
    """Per camera, in the database, so it survives restarts."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @contextmanager
    def atomically(self, *about: str) -> Iterator[None]:
        """What is read and written inside happens as one step, and no other worker thread,
        process or node decides `about` the same things (a camera, the budget) in between, so
        a camera's decisions stay what they would be one upload at a time."""
        with self._db.transaction():
            for key in sorted(about):  # one order everywhere: no two wait for each other
                self._db.lock(key)
            yield

    # --- repeated frames ---------------------------------------------------------------

    def last_frame(self, camera: str) -> tuple[int, int | None] | None:
        """The hash of the camera's last analysed frame, and its upload's queue id."""
        rows = self._db.query(
            "SELECT hash, item_id FROM camera_frames WHERE camera = $1", (camera,)
        )
        return (int(rows[0][0], 16), rows[0][1]) if rows else None

    def remember_frame(self, camera: str, frame_hash: int, item_id: int, now: float) -> None:
        self._db.execute(
            upsert("camera_frames", ("camera", "hash", "seen_at", "item_id"), ("camera",)),
            (camera, f"{frame_hash:064x}", now, item_id),
        )

    # --- stationary objects ------------------------------------------------------------

    def remembered_objects(self, camera: str, forget_before: float) -> list[RememberedObject]:
        """The camera's alerted objects seen since `forget_before`; older ones are forgotten."""
        self._db.execute(
            "DELETE FROM stationary_objects WHERE camera = $1 AND last_seen < $2",
            (camera, forget_before),
        )
        rows = self._db.query("SELECT * FROM stationary_objects WHERE camera = $1", (camera,))
        return [
            RememberedObject(
                row["id"],
                row["label"],
                Box(row["left"], row["top"], row["width"], row["height"]),
                row["alerted_at"],
            )
            for row in rows
        ]

    def objects_seen_again(self, ids: set[int], now: float) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE stationary_objects SET last_seen = $1 WHERE id = $2",
                [(now, object_id) for object_id in sorted(ids)],
            )

    def remember_objects(self, camera: str, objects: list[tuple[str, Box]], now: float) -> None:
        """(kind, box) of each alerted object."""
        with self._db.transaction() as conn:
            conn.executemany(
                'INSERT INTO stationary_objects (camera, label, "left", top, width, height,'
                " alerted_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    (camera, kind, box.left, box.top, box.width, box.height, now, now)
                    for kind, box in objects
                ],
            )

    # --- cooldowns -----------------------------------------------------------------------

    def last_alerts(self, camera: str) -> dict[str, float]:
        """When each label last alerted, by case-folded name."""
        rows = self._db.query(
            "SELECT label, last_alert FROM cooldowns WHERE camera = $1", (camera,)
        )
        return {row["label"].casefold(): row["last_alert"] for row in rows}

    def remember_alert(self, camera: str, matched: tuple[MatchedLabel, ...], now: float) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                upsert("cooldowns", ("camera", "label", "last_alert"), ("camera", "label")),
                [(camera, match.label.name, now) for match in matched],
            )

    # --- bursts (the pictures of one e-mail) ---------------------------------------------

    def remember_burst_frame(
        self,
        burst_id: str,
        item_id: int,
        strength: float,
        *,
        replace: bool,
        labels: frozenset[str] = frozenset(),
    ) -> None:
        """A frame's strength (its best matched confidence, 0 when it does not alert) and the
        labels it matched; `replace=False` keeps those recorded before. When it was first
        decided stays."""
        update = (
            "UPDATE SET strength = excluded.strength, labels = excluded.labels"
            if replace
            else "NOTHING"
        )
        self._db.execute(
            "INSERT INTO burst_frames (burst_id, item_id, strength, decided_at, labels)"
            f" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (burst_id, item_id) DO {update}",
            (burst_id, item_id, strength, time.time(), json.dumps(sorted(labels))),
        )

    def burst_frames(self, burst_id: str) -> tuple[list[BurstFrame], float]:
        """The burst's decided frames, and when the first was decided."""
        rows = self._db.query(
            "SELECT f.item_id, COALESCE(u.original_name, ''), f.strength, f.decided_at, f.alerted,"
            " f.labels"
            " FROM burst_frames f LEFT JOIN uploads u ON u.id = f.item_id"
            " WHERE f.burst_id = $1 ORDER BY f.item_id",
            (burst_id,),
        )
        first = min((row[3] for row in rows), default=time.time())
        frames = [
            BurstFrame(
                row[0], row[1], row[2], _BURST_VERDICTS.get(row[4]), frozenset(json.loads(row[5]))
            )
            for row in rows
        ]
        return frames, first

    def remember_burst_verdict(self, burst_id: str, item_id: int, *, alerted: bool) -> None:
        """The frame that decided for the burst, and whether the burst alerted with it."""
        self._db.execute(
            "UPDATE burst_frames SET alerted = $1 WHERE burst_id = $2 AND item_id = $3",
            (_ALERTED if alerted else _SUPPRESSED, burst_id, item_id),
        )

    # --- what a camera's single pictures matched (filters.confirm.wait_seconds) -----------

    def remember_sighting(
        self, camera: str, item_id: int, labels: frozenset[str], now: float, keep_seconds: float
    ) -> float:
        """What this picture matched (kept from its first decision); when that was."""
        self._db.execute(
            "DELETE FROM camera_sightings WHERE camera = $1 AND decided_at < $2",
            (camera, now - keep_seconds),
        )
        self._db.execute(
            "INSERT INTO camera_sightings (camera, item_id, labels, decided_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (camera, item_id) DO NOTHING",
            (camera, item_id, json.dumps(sorted(labels)), now),
        )
        rows = self._db.query(
            "SELECT decided_at FROM camera_sightings WHERE camera = $1 AND item_id = $2",
            (camera, item_id),
        )
        return float(rows[0][0]) if rows else now

    def next_sighting(self, camera: str, item_id: int) -> frozenset[str] | None:
        """What the camera's next decided picture after this one matched; None before it is."""
        rows = self._db.query(
            "SELECT labels FROM camera_sightings WHERE camera = $1 AND item_id > $2"
            " ORDER BY item_id LIMIT 1",
            (camera, item_id),
        )
        return frozenset(json.loads(rows[0][0])) if rows else None

    # --- cloud budget --------------------------------------------------------------------

    def cloud_calls(self, period: str, camera: str | None = None) -> int:
        """Paid calls in the days starting with `period` (a day or a month), of one camera or all."""
        params = Parameters()
        # A prefix compared with `=`, not LIKE: case-sensitive and the same on both engines.
        where = f"substr(day, 1, {params.bind(len(period))}) = {params.bind(period)}"
        if camera is not None:
            where += f" AND camera = {params.bind(camera)}"
        rows = self._db.query(
            f"SELECT COALESCE(SUM(calls), 0) FROM cloud_calls WHERE {where}", params
        )
        return int(rows[0][0])

    def first_budget_notice(self, period: str, scope: str, level: str) -> bool:
        """True the first time this notice is asked for in its period."""
        cursor = self._db.execute(
            "INSERT INTO budget_notices (period, scope, level) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            (period, scope, level),
        )
        return cursor.rowcount == 1

    def count_cloud_calls(self, day: str, camera: str, calls: int) -> None:
        """Add paid calls (negative: give back a reservation)."""
        self._db.execute(
            "INSERT INTO cloud_calls (day, camera, calls) VALUES ($1, $2, $3)"
            " ON CONFLICT (day, camera) DO UPDATE SET calls = cloud_calls.calls + excluded.calls",
            (day, camera, calls),
        )

    def calls_today(self, day: str) -> dict[str, int]:
        """The day's paid calls by camera."""
        rows = self._db.query("SELECT camera, calls FROM cloud_calls WHERE day = $1", (day,))
        return {row[0]: row[1] for row in rows}

    # --- error streaks -------------------------------------------------------------------

    def in_error_streak(self, camera: str) -> bool:
        """Whether the camera's current run of failures already had its error e-mail."""
        return bool(
            self._db.query("SELECT 1 FROM camera_error_streaks WHERE camera = $1", (camera,))
        )

    def start_error_streak(self, camera: str) -> None:
        self._db.execute(
            upsert("camera_error_streaks", ("camera", "since"), ("camera",)),
            (camera, time.time()),
        )

    def end_error_streak(self, camera: str) -> None:
        self._db.execute("DELETE FROM camera_error_streaks WHERE camera = $1", (camera,))
