"""Caps on paid cloud calls, and the pure verdict on a camera's use against them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field

from ipcam_analysis.settings import StrictModel


class CallLimits(StrictModel):
    daily_calls: int | None = Field(None, ge=0)
    monthly_calls: int | None = Field(None, ge=0)


class BudgetConfig(CallLimits):
    """Caps on paid cloud calls; past them the local detector (or nothing) answers."""

    warn_percent: float = Field(80, gt=0, le=100)
    on_exhausted: Literal["local", "none"] = "local"


@dataclass(frozen=True)
class BudgetLimit:
    """One cap to check: for all cameras or one, per day or month."""

    scope: str  # "all cameras" or the camera's name
    camera: str | None  # None: counted over all cameras
    period: str  # "2026-12-03" or "2026-12": the prefix of the days counted
    name: str  # "daily" or "monthly"
    limit: int


def capped(overall: CallLimits, own: CallLimits) -> bool:
    """Whether any cap applies to a camera's paid calls (its own or the overall ones)."""
    return any(
        limit is not None
        for limits in (overall, own)
        for limit in (limits.daily_calls, limits.monthly_calls)
    )


def limits_for(
    camera: str, overall: BudgetConfig, own: CallLimits, now: float
) -> list[BudgetLimit]:
    """The caps that apply to a paid call from this camera now."""
    moment = datetime.fromtimestamp(now)
    day, month = moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m")
    found = []
    for scope, who, limits in (("all cameras", None, overall), (camera, camera, own)):
        for period, name, limit in (
            (day, "daily", limits.daily_calls),
            (month, "monthly", limits.monthly_calls),
        ):
            if limit is not None:
                found.append(BudgetLimit(scope, who, period, name, limit))
    return found


def budget_level(used: int, limit: BudgetLimit, warn_percent: float) -> str | None:
    """ "exhausted", "warning" or None."""
    if used >= limit.limit:
        return "exhausted"
    return "warning" if used * 100 >= limit.limit * warn_percent else None


def budget_notice(used: int, limit: BudgetLimit, level: str, on_exhausted: str) -> str:
    """What the owner is told once per period and level."""
    text = f"Cloud budget for {limit.scope}: {used} of {limit.limit} {limit.name} calls used"
    if level == "exhausted":
        text += f"; the {on_exhausted} fallback answers until the period ends"
    return text
