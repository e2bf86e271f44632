"""Optimistic concurrency for a shift, as a pure decision: shift, do nothing (already there), or refuse (drift).

golive never fights a human: if the provider applies a weight other than the one golive set last, someone
changed traffic by hand, and the shift is refused with both values (traffic_drift) for the saga to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ShiftDecision:
    action: Literal["shift", "already_there", "drift"]
    expected: int | None = None


def judge_shift(observed: int, requested: int, expected: int | None) -> ShiftDecision:
    """What to do with a shift to ``requested`` when the provider reads back ``observed`` and golive expects
    ``expected`` (None: golive knows of no weight it set).

    Already at ``requested`` wins over drift: the same shift twice (or one redelivered after a crash that
    happened after the change) changes traffic once, and a human who set exactly that weight did no harm.
    """
    if observed == requested:
        return ShiftDecision("already_there", expected)
    if expected is not None and observed != expected:
        return ShiftDecision("drift", expected)
    return ShiftDecision("shift", expected)
