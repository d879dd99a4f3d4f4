"""Figures computed from the store for both the pages and the API: usage, cost, camera silence;
and what an event's card says about it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from ipcam_analysis.values import (
    ALERT,
    CORRUPT,
    ERROR,
    MISSING,
    NO_MATCH,
    NOT_IMAGE,
    OUTSIDE_WINDOW,
    SUPPRESSED,
)

# A camera that has not uploaded for a day is shown as silent: cameras set to upload on motion
# see some every day (light changes, insects), so a quiet day usually means a broken camera.
SILENT_AFTER_SECONDS = 24 * 3600
COUNTS = ("uploads", "alerts", "cloud_calls")
# A card lists this many labels at most (then "+3 more"); the event page lists them all.
CARD_LABELS = 5
# Why an event did not alert when it carries no reason of its own (recorded by an older version,
# or an outcome whose name says it all).
DEFAULT_WHY = {
    NO_MATCH: "none of these is in labels",
    SUPPRESSED: "a repeat of an earlier alert",
    OUTSIDE_WINDOW: "received outside the camera's time window",
    MISSING: "the file vanished before it was analysed",
}


def camera_states(
    cameras: Iterable[dict[str, Any]], running_seconds: float
) -> list[dict[str, Any]]:
    """The store's camera entries with `silent`: no upload for SILENT_AFTER_SECONDS, counted
    from the service's start at the earliest (`running_seconds` ago). A camera cannot be
    blamed for what happened while nobody listened, nor be silent minutes after a start."""
    return [
        {
            **camera,
            "silent": min(
                running_seconds,
                math.inf if camera["silent_seconds"] is None else camera["silent_seconds"],
            )
            >= SILENT_AFTER_SECONDS,
        }
        for camera in cameras
    ]


def usage_summary(
    rows: Sequence[Mapping[str, Any]], days: int, today: date, price_per_1000: float
) -> dict[str, Any]:
    """Per day (every day of the period, oldest first), per camera, and in total, with cost."""
    by_day = {(today - timedelta(days=offset)).isoformat(): _zero() for offset in range(days)}
    by_camera: dict[str, dict[str, int]] = {}
    total = _zero()
    for row in rows:
        for bucket in (
            by_day.setdefault(row["day"], _zero()),
            by_camera.setdefault(row["camera"], _zero()),
            total,
        ):
            for key in COUNTS:
                bucket[key] += row[key] or 0

    def with_cost(counts: dict[str, int], **extra: str) -> dict[str, Any]:
        return {**extra, **counts, "cost": round(counts["cloud_calls"] * price_per_1000 / 1000, 4)}

    return {
        "days": [with_cost(by_day[day], day=day) for day in sorted(by_day)],
        "cameras": [with_cost(by_camera[name], camera=name) for name in sorted(by_camera)],
        "total": with_cost(total),
        "price_per_1000_images": price_per_1000,
    }


def bar_chart(values: Sequence[tuple[str, float]], height: float = 100) -> dict[str, Any]:
    """Bars for an inline SVG `viewBox="0 0 len(values) height"`: one unit wide per value."""
    peak = max((value for _, value in values), default=0)
    bars = []
    for index, (label, value) in enumerate(values):
        bar_height = value / peak * height if peak else 0
        bars.append(
            {
                "x": index + 0.1,
                "y": height - bar_height,
                "width": 0.8,
                "height": bar_height,
                "label": label,
                "value": value,
            }
        )
    return {"bars": bars, "peak": peak, "width": len(values), "height": height}


def describe_duration(seconds: float) -> str:
    """`45 seconds`, `12 minutes`, `5 hours`, `3 days`: the largest unit that fits, rounded down."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    count = int(seconds)
    return f"{count} second{'' if count == 1 else 's'}"


def explained(event: Mapping[str, Any], most_labels: int | None = None) -> dict[str, Any]:
    """The event with what its card says: `seen`, its labels with their confidence in percent
    (the first `most_labels`; `more` counts the others), each marked when it triggered; and
    `why`, one line: what it alerted on, why it did not, or what failed."""
    labels = [
        {
            "name": label["name"],
            "confidence": round(label["confidence"]),
            "triggered": label["name"] in event["triggered"],
        }
        for label in event["labels"]
    ]
    shown = labels if most_labels is None else labels[:most_labels]
    return {**event, "seen": shown, "more": len(labels) - len(shown), "why": why(event)}


def why(event: Mapping[str, Any]) -> str:
    """The event's reason as one line, with what it alerted on or that it failed."""
    reason, outcome = one_line(event["reason"]), event["outcome"]
    if outcome == ALERT:
        alerted = f"alerted on {', '.join(event['triggered'])}" if event["triggered"] else ""
        return "; ".join(part for part in (alerted, reason) if part)
    if outcome == ERROR:
        return f"failed: {reason or 'see the log'}"
    if reason:
        return reason
    if outcome == NO_MATCH and not event["labels"]:
        return "nothing found"
    return DEFAULT_WHY.get(outcome, "")


def no_picture_note(event: Mapping[str, Any]) -> str:
    """Why an event keeps no picture. One that was decoded (it has a size) had its picture
    removed by retention or never written (disk full); the others never had a readable one."""
    outcome = event["outcome"]
    if event["width"]:
        return "retention removed it, or the disk was full"
    if outcome in (NOT_IMAGE, CORRUPT):
        return "the upload was not a readable image"
    if outcome == ERROR:
        return "processing failed before it was read"
    return DEFAULT_WHY.get(outcome, "the picture was never read")


def one_line(message: str | None) -> str:
    """A recorded message's first line, spaces collapsed: a card shows no traceback."""
    lines = [line for line in (message or "").splitlines() if line.strip()]
    return " ".join(lines[0].split()) if lines else ""


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)
