"""What the filters remember between uploads (in the database, so it survives restarts)."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime

from ipcam_analysis.config import BudgetConfig, CallLimits, StationaryConfig
from ipcam_analysis.database import Database
from ipcam_analysis.imaging import hash_distance
from ipcam_analysis.models import Box, Instance, Label, MatchedLabel
from ipcam_analysis.rules import iou

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Memory:
    """Everything the filters remember, in one place for the pipeline."""

    frames: FrameMemory
    stationary: StationaryMemory
    cooldowns: Cooldowns
    budget: CloudBudget

    @classmethod
    def open(cls, database: Database, budget: BudgetConfig) -> Memory:
        return cls(
            FrameMemory(database),
            StationaryMemory(database),
            Cooldowns(database),
            CloudBudget(database, budget),
        )


class FrameMemory:
    """The perceptual hash of each camera's last analysed frame."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def distance_to_last(self, camera: str, frame_hash: int) -> int | None:
        rows = self._db.query("SELECT hash FROM camera_frames WHERE camera = ?", (camera,))
        return hash_distance(int(rows[0][0], 16), frame_hash) if rows else None

    def remember(self, camera: str, frame_hash: int, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO camera_frames (camera, hash, seen_at) VALUES (?, ?, ?)",
            (camera, f"{frame_hash:064x}", now),
        )


class StationaryMemory:
    """Boxes alerted on, per camera and label: an object still in its box is not news."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def filter(
        self,
        camera: str,
        matched: tuple[MatchedLabel, ...],
        settings: StationaryConfig,
        now: float,
    ) -> tuple[tuple[MatchedLabel, ...], list[str]]:
        """Drop the instances that overlap a remembered box (refreshing it); keep the rest."""
        self._db.execute(
            "DELETE FROM stationary_objects WHERE camera = ? AND last_seen < ?",
            (camera, now - settings.forget_after_minutes * 60),
        )
        rows = self._db.query("SELECT * FROM stationary_objects WHERE camera = ?", (camera,))
        kept: list[MatchedLabel] = []
        reasons: list[str] = []
        still_there: set[str] = set()
        for match in matched:
            if not match.label.instances:
                kept.append(match)
                continue
            new: list[Instance] = []
            for instance in match.label.instances:
                known = _best_overlap(rows, object_kind(match.label), instance, settings.iou)
                if known is None:
                    new.append(instance)
                    continue
                self._db.execute(
                    "UPDATE stationary_objects SET last_seen = ? WHERE id = ?", (now, known["id"])
                )
                since = datetime.fromtimestamp(known["alerted_at"]).strftime("%H:%M")
                reasons.append(f"{match.label.name} still there (alerted at {since})")
            if new:
                kept.append(replace(match, label=replace(match.label, instances=tuple(new))))
            else:
                still_there.update(p.casefold() for p in (match.label.name, *match.label.parents))
        # "Vehicle" without a box only repeats what a stationary Car already said.
        boxed_kept = {
            p.casefold()
            for m in kept
            if m.label.instances
            for p in (m.label.name, *m.label.parents)
        }
        result = tuple(
            m
            for m in kept
            if m.label.instances
            or m.label.name.casefold() not in still_there
            or m.label.name.casefold() in boxed_kept
        )
        return result, reasons

    def remember(self, camera: str, matched: tuple[MatchedLabel, ...], now: float) -> None:
        with self._db.transaction() as conn:
            for match in matched:
                for instance in match.label.instances:
                    box = instance.box
                    conn.execute(
                        "INSERT INTO stationary_objects (camera, label, left, top, width, height,"
                        " alerted_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            camera,
                            object_kind(match.label),
                            box.left,
                            box.top,
                            box.width,
                            box.height,
                            now,
                            now,
                        ),
                    )


def object_kind(label: Label) -> str:
    """What an object is remembered as: its nearest parent, so a parked van that a detector
    calls a Truck in one frame and a Bus in the next is the same Vehicle."""
    return label.parents[0] if label.parents else label.name


def _best_overlap(
    rows: list[sqlite3.Row], label: str, instance: Instance, threshold: float
) -> sqlite3.Row | None:
    """The remembered box of this label that overlaps the instance most, if enough."""
    best, best_iou = None, threshold
    for row in rows:
        if row["label"].casefold() != label.casefold():
            continue
        remembered = Box(row["left"], row["top"], row["width"], row["height"])
        overlap = iou(remembered, instance.box)
        if overlap >= best_iou:
            best, best_iou = row, overlap
    return best


class Cooldowns:
    """When each camera last alerted for each label."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def filter(
        self, camera: str, matched: tuple[MatchedLabel, ...], seconds: float, now: float
    ) -> tuple[tuple[MatchedLabel, ...], list[str]]:
        rows = self._db.query("SELECT label, last_alert FROM cooldowns WHERE camera = ?", (camera,))
        last = {row["label"].casefold(): row["last_alert"] for row in rows}
        kept, reasons = [], []
        for match in matched:
            previous = last.get(match.label.name.casefold())
            if previous is not None and now - previous < seconds:
                reasons.append(f"{match.label.name} alerted {now - previous:.0f} s ago (cooldown)")
            else:
                kept.append(match)
        return tuple(kept), reasons

    def remember(self, camera: str, matched: tuple[MatchedLabel, ...], now: float) -> None:
        with self._db.transaction() as conn:
            for match in matched:
                conn.execute(
                    "INSERT OR REPLACE INTO cooldowns (camera, label, last_alert) VALUES (?, ?, ?)",
                    (camera, match.label.name, now),
                )


@dataclass(frozen=True)
class BudgetCheck:
    allowed: bool
    notices: tuple[str, ...] = ()  # each said once per period: "80 % of the daily ..."


class CloudBudget:
    """Paid cloud calls per local day and month, global and per camera."""

    def __init__(self, database: Database, settings: BudgetConfig) -> None:
        self._db = database
        self._settings = settings

    def check(self, camera: str, limits: CallLimits, now: float) -> BudgetCheck:
        moment = datetime.fromtimestamp(now)
        day, month = moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m")
        allowed, notices = True, []
        for scope, scope_limits, where, params in (
            ("all cameras", self._settings, "", ()),
            (camera, limits, " AND camera = ?", (camera,)),
        ):
            for period, name, limit in (
                (day, "daily", scope_limits.daily_calls),
                (month, "monthly", scope_limits.monthly_calls),
            ):
                if limit is None:
                    continue
                used = self._db.query(
                    f"SELECT COALESCE(SUM(calls), 0) FROM cloud_calls WHERE day LIKE ?{where}",
                    (f"{period}%", *params),
                )[0][0]
                level = (
                    "exhausted"
                    if used >= limit
                    else ("warning" if used * 100 >= limit * self._settings.warn_percent else None)
                )
                if level == "exhausted":
                    allowed = False
                if level and self._first_notice(period, scope, level):
                    notices.append(
                        f"Cloud budget for {scope}: {used} of {limit} {name} calls used"
                        + (
                            f"; the {self._settings.on_exhausted} fallback answers until the period ends"
                            if level == "exhausted"
                            else ""
                        )
                    )
        return BudgetCheck(allowed, tuple(notices))

    def _first_notice(self, period: str, scope: str, level: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO budget_notices (period, scope, level) VALUES (?, ?, ?)",
            (period, scope, level),
        )
        return cursor.rowcount == 1

    def count(self, camera: str, calls: int, now: float) -> None:
        """Add paid calls; the day's totals go to the log, so spend is visible without the dashboard."""
        if not calls:
            return
        day = datetime.fromtimestamp(now).strftime("%Y-%m-%d")
        self._db.execute(
            "INSERT INTO cloud_calls (day, camera, calls) VALUES (?, ?, ?)"
            " ON CONFLICT (day, camera) DO UPDATE SET calls = calls + excluded.calls",
            (day, camera, calls),
        )
        rows = self._db.query("SELECT camera, calls FROM cloud_calls WHERE day = ?", (day,))
        today = dict((row[0], row[1]) for row in rows)
        cap = self._settings.daily_calls
        log.info(
            "Cloud calls today: %d%s (%s: %d)",
            sum(today.values()),
            f" of {cap}" if cap is not None else "",
            camera,
            today.get(camera, 0),
        )
