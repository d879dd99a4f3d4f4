"""When uploads are analysed: daily windows of local time, on chosen days."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ipcam_analysis.settings import StrictModel


def parse_clock_time(value: Any) -> time:
    """`'5:00'`, `'05:07'`, or the integer YAML 1.1 makes of an unquoted `5:00` (5*60 = 300)."""
    if isinstance(value, time):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a time such as '05:00'")
    if isinstance(value, int):
        # Unquoted H:MM is read by YAML as base-60 minutes.
        if not 0 <= value < 24 * 60:
            raise ValueError(f"{value} is not a time of day; write it quoted, such as '05:00'")
        return time(value // 60, value % 60)
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            hours, minutes = (int(p) for p in parts)
            if 0 <= hours < 24 and 0 <= minutes < 60:
                return time(hours, minutes)
    raise ValueError(f"{value!r} is not a time of day in HH:MM form, such as '05:00'")


ClockTime = Annotated[time, Field(description="HH:MM, server local time")]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(StrictModel):
    """When uploads are analysed; outside it they are recorded and dropped."""

    start: ClockTime
    end: ClockTime
    days: tuple[Weekday, ...] = WEEKDAYS

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> time:
        return parse_clock_time(value)

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [str(day).strip().lower()[:3] for day in value] if isinstance(value, list) else value

    def contains(self, now: datetime) -> bool:
        """Inclusive of the whole end minute; wraps past midnight; start == end means all day.

        After midnight, a window that wrapped belongs to the day it started on."""
        minute = (now.hour, now.minute)
        start = (self.start.hour, self.start.minute)
        end = (self.end.hour, self.end.minute)
        today = WEEKDAYS[now.weekday()]
        yesterday = WEEKDAYS[(now.weekday() - 1) % 7]
        if start == end:
            return today in self.days
        if start < end:
            return start <= minute <= end and today in self.days
        return (minute >= start and today in self.days) or (
            minute <= end and yesterday in self.days
        )

    def describe(self) -> str:
        days = "" if self.days == WEEKDAYS else " " + ",".join(self.days)
        return f"[{self.start:%H:%M}, {self.end:%H:%M}]{days}"


def _as_window_list(value: Any) -> Any:
    """`time_window` may be one window (the original's form) or a list of them."""
    if value is None or isinstance(value, list | tuple):
        return value
    return [value]


TimeWindows = Annotated[tuple[TimeWindow, ...] | None, BeforeValidator(_as_window_list)]


def in_time_windows(windows: tuple[TimeWindow, ...] | None, now: datetime) -> bool:
    return not windows or any(window.contains(now) for window in windows)


def describe_time_windows(windows: tuple[TimeWindow, ...]) -> str:
    return " or ".join(window.describe() for window in windows)
