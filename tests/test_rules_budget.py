"""Which caps apply to a camera's paid calls: any cap, its own or the overall one, daily or
monthly, means each call is reserved before it is made."""

from __future__ import annotations

import pytest

from ipcam_analysis.rules.budget import BudgetConfig, CallLimits, capped, limits_for

NOON = 1_796_644_800.0  # 2026-12-07, noon UTC


@pytest.mark.parametrize(
    ("overall", "own", "expected"),
    [
        ({}, {}, False),
        ({"daily_calls": 100}, {}, True),
        ({"monthly_calls": 0}, {}, True),  # a cap of nothing is a cap
        ({}, {"monthly_calls": 500}, True),
        ({}, {"daily_calls": 5}, True),
    ],
)
def test_a_camera_is_capped_by_any_cap_that_limits_it(
    overall: dict[str, int], own: dict[str, int], expected: bool
) -> None:
    overall_config, own_limits = BudgetConfig(**overall), CallLimits(**own)
    assert capped(overall_config, own_limits) is expected
    # The same answer as the caps checked when a call is reserved.
    assert bool(limits_for("cam01", overall_config, own_limits, NOON)) is expected
