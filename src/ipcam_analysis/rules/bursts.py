"""A burst (the pictures of one e-mail) alerts at most once: with its most confident frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# How long an alerting frame waits for its burst's other frames to be decided (counted from
# the first decision: a frame whose analysis keeps failing must not hold the alert forever).
BURST_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class BurstTurn:
    """What an alerting frame of a burst does now: wait, alert, or stay quiet (and why)."""

    wait: bool = False
    alert: bool = False
    reason: str = ""


WAIT = BurstTurn(wait=True)
ALERT = BurstTurn(alert=True)


def burst_turn(
    item_id: int,
    strengths: Mapping[int, float],
    burst_size: int,
    waited_seconds: float,
    max_wait_seconds: float = BURST_WAIT_SECONDS,
) -> BurstTurn:
    """`strengths`: the decided frames' best matched confidence by item id, 0 for a frame that
    does not alert, this frame's included. The strongest frame alerts (the first on a tie),
    once every frame is decided or the wait is over."""
    if len(strengths) < burst_size and waited_seconds < max_wait_seconds:
        return WAIT
    best = min(strengths, key=lambda other: (-strengths[other], other))
    if best == item_id:
        return ALERT
    return BurstTurn(
        reason=f"picture {best} of the same e-mail matched more strongly "
        f"({strengths[best]:.1f}% against {strengths.get(item_id, 0):.1f}%)"
    )


def already_alerted(alerted_item: int) -> BurstTurn:
    return BurstTurn(reason=f"the same e-mail already alerted with picture {alerted_item}")
