"""A burst (the pictures of one e-mail) is one decision, made by its most confident picture before
the repeats (stationary objects, cooldown): it alerts at most once, with that picture. With
`filters.confirm`, a weak detection alerts only when another picture of the burst saw the same
label: a bird called Person in one picture of three is a flicker, a person is in several."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from pydantic import Field

from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import MatchedLabel

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
    labels: frozenset[str] = frozenset()  # what it matched, case-folded (and runner-ups)

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
    others_saw: frozenset[str] = frozenset()  # deciding: what the burst's other frames matched


class ConfirmConfig(StrictModel):
    """A weak detection must be seen in a second picture of the same burst; off by default."""

    # Matched objects below this confidence are weak; 0: none is (off).
    weak_below_percent: float = Field(0, ge=0, le=100)
    # A single picture (not a burst) with weak objects waits up to this long for the camera's
    # next picture to see them too; 0: it is not held back (off).
    wait_seconds: float = Field(0, ge=0, le=600)


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
        others = (frame.labels for frame in frames if frame.item_id != item_id)
        return BurstTurn(decides=True, others_saw=frozenset().union(*others))
    if not over:
        return WAIT
    return BurstTurn(
        reason=f"part of the burst decided by its most confident picture, {best.named}"
    )


def _quiet(verdict: BurstFrame) -> BurstTurn:
    outcome = "alerted" if verdict.alerted else "suppressed"
    return BurstTurn(reason=f"part of the burst {outcome} with {verdict.named}")


def matched_names(matched: Sequence[MatchedLabel]) -> frozenset[str]:
    """The names a frame matched (and their runner-ups), case-folded: what confirms others."""
    return frozenset(
        name.casefold()
        for match in matched
        for name in (match.label.name, *match.label.runner_up_names)
    )


def confirmed_by_next_picture(
    matched: Sequence[MatchedLabel],
    next_saw: frozenset[str] | None,
    waited_seconds: float,
    confirm: ConfirmConfig,
) -> tuple[tuple[MatchedLabel, ...], list[str], bool]:
    """A single picture's matches once the camera's next picture (`next_saw`: what it matched;
    None while none was decided) saw its weak objects or not, and whether to wait for it."""
    if next_saw is None and waited_seconds < confirm.wait_seconds:
        unconfirmed, _ = confirmed_in_burst(matched, frozenset(), confirm)
        if unconfirmed != tuple(matched):
            return tuple(matched), [], True
    if next_saw is None:
        unseen = f"seen in no other picture within {confirm.wait_seconds:g} s"
    else:
        unseen = "not seen in the camera's next picture"
    kept, reasons = confirmed_in_burst(matched, next_saw or frozenset(), confirm, unseen)
    return kept, reasons, False


def confirmed_in_burst(
    matched: Sequence[MatchedLabel],
    others_saw: frozenset[str],
    confirm: ConfirmConfig,
    unseen: str = "seen in no other picture of the burst",
) -> tuple[tuple[MatchedLabel, ...], list[str]]:
    """The deciding frame's matches without the weak objects no other frame of the burst saw
    (by label); one reason per object dropped, saying it was `unseen`."""
    weak = confirm.weak_below_percent
    kept: list[MatchedLabel] = []
    reasons: list[str] = []
    for match in matched:
        label = match.label
        if not weak or matched_names([match]) & others_saw:
            kept.append(match)
            continue
        confidences = [i.confidence for i in label.instances] or [label.confidence]
        reasons += [
            f"{match.display_name} {confidence:.0f}% {unseen}"
            for confidence in confidences
            if confidence < weak
        ]
        strong = tuple(i for i in label.instances if i.confidence >= weak)
        if strong:
            kept.append(replace(match, label=replace(label, instances=strong)))
        elif not label.instances and label.confidence >= weak:
            kept.append(match)
    return tuple(kept), reasons
