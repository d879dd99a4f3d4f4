"""Query strings → validated filters, shared by the events page and `GET /api/events`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from starlette.convertors import IntegerConvertor, register_url_convertor

from ipcam_analysis.store import PAGE_SIZE, EventFilter
from ipcam_analysis.values import (
    ALERT,
    CORRUPT,
    DUPLICATE,
    ERROR,
    MISSING,
    NO_MATCH,
    NOT_IMAGE,
    OUTSIDE_WINDOW,
    SKIPPED,
    SUPPRESSED,
)

# Every final outcome, with the words the pages use for it.
OUTCOMES = {
    ALERT: "Alert",
    NO_MATCH: "Nothing of interest",
    SUPPRESSED: "Alert suppressed",
    DUPLICATE: "Same as the last picture",
    OUTSIDE_WINDOW: "Outside the time window",
    SKIPPED: "Skipped (cloud budget)",
    NOT_IMAGE: "Not an image",
    CORRUPT: "Damaged image",
    MISSING: "File vanished",
    ERROR: "Error",
}
MAX_LIMIT = 500
USAGE_DAYS, MAX_USAGE_DAYS = 30, 366
MAX_TEXT_LENGTH = 200


class EventIdConvertor(IntegerConvertor):
    """`{event_id:event_id}` in a route: at most 18 digits, so every id it matches fits the
    database's 64-bit integers; a longer number matches no route (404) rather than overflowing."""

    regex = "[0-9]{1,18}"


register_url_convertor("event_id", EventIdConvertor())


class BadRequest(ValueError):
    """A query parameter the dashboard cannot use; the message says which and why."""


def event_filter(params: Mapping[str, str]) -> EventFilter:
    """camera, label, outcome, burst, since, until (dates or ISO times), before_id, limit."""
    outcome = _text(params, "outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    return EventFilter(
        camera=_text(params, "camera"),
        label=_text(params, "label"),
        outcome=outcome,
        burst=_text(params, "burst"),
        since=_moment(params, "since", end_of_day=False),
        until=_moment(params, "until", end_of_day=True),
        before_id=_integer(params, "before_id", 1, 2**63 - 1),
        limit=_integer(params, "limit", 1, MAX_LIMIT) or PAGE_SIZE,
    )


def days_parameter(params: Mapping[str, str]) -> int:
    """The usage period: `days`, 30 by default, a year at most."""
    return _integer(params, "days", 1, MAX_USAGE_DAYS) or USAGE_DAYS


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise BadRequest(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
    return value or None  # an empty form field means "any"


def _integer(params: Mapping[str, str], name: str, lowest: int, highest: int) -> int | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or not lowest <= int(text) <= highest:
        raise BadRequest(f"{name} must be a whole number from {lowest} to {highest}")
    return int(text)


def _moment(params: Mapping[str, str], name: str, *, end_of_day: bool) -> float | None:
    """Epoch seconds. A bare date means its whole day, so `until=2026-11-23` includes the 23rd."""
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end_of_day:
                day += timedelta(days=1)
            return datetime.combine(day, time()).astimezone().timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{name} must be a date (2026-11-23) or a time (2026-11-23T10:30:00)"
        ) from None
    # A time without an offset is the server's local time, like the times the pages show.
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


def camera_event_filter(params: Mapping[str, str]) -> tuple[str | None, int | None, int]:
    """camera, before_id and limit of `GET /api/camera_events`."""
    return (
        _text(params, "camera"),
        _integer(params, "before_id", 1, 2**63 - 1),
        _integer(params, "limit", 1, MAX_LIMIT) or PAGE_SIZE,
    )
