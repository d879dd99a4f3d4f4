"""A burst (the pictures of one e-mail) is one decision, made by its most confident picture before
the repeats (stationary objects, cooldown): it alerts at most once, with that picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

# How long a frame waits for its burst's other frames to be decided (counted from the first
# decision: a frame whose analysis keeps failing must not hold the burst forever).
BURST_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class BurstFrame:
    """A decided frame of a burst, as remembered."""

    item_id: int
    original_name: str
    strength: float  # its best matched confidence; 0 when it does not alert
    # Set on the frame that decided for the burst: whether the burst alerted with it.
    alerted: bool | None = None

    @property
    def named(self) -> str:
        return f"{PurePosixPath(self.original_name).name} (event {self.item_id})"


@dataclass(frozen=True)
class BurstTurn:
    """What an alerting frame of a burst does now: wait, decide for the burst (the repeats,
    then alert or not), or stay quiet (and why)."""

    wait: bool = False
    decides: bool = False
    reason: str = ""


WAIT = BurstTurn(wait=True)
DECIDES = BurstTurn(decides=True)


def burst_turn(
    item_id: int,
    frames: Sequence[BurstFrame],
    burst_size: int,
    waited_seconds: float,
    max_wait_seconds: float = BURST_WAIT_SECONDS,
) -> BurstTurn:
    """`frames`: the burst's decided frames, this one included. Once every frame is decided
    (or the wait is over) the strongest decides for the burst (the first on a tie); the others
    wait for its verdict, and then name it."""
    verdict = next((frame for frame in frames if frame.alerted is not None), None)
    if verdict is not None:  # a frame decided late: the burst has spoken
        return DECIDES if verdict.item_id == item_id else _quiet(verdict)
    over = waited_seconds >= max_wait_seconds
    if len(frames) < burst_size and not over:
        return WAIT
    best = min(frames, key=lambda frame: (-frame.strength, frame.item_id))
    if best.item_id == item_id:
        return DECIDES
    if not over:
        return WAIT
    return BurstTurn(
        reason=f"part of the burst decided by its most confident picture, {best.named}"
    )


def _quiet(verdict: BurstFrame) -> BurstTurn:
    outcome = "alerted" if verdict.alerted else "suppressed"
    return BurstTurn(reason=f"part of the burst {outcome} with {verdict.named}")
