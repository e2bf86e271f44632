"""The shift decision (optimistic concurrency) as a pure function: shift, already there, or drift."""

from __future__ import annotations

import pytest

from golive.services.traffic.drift import judge_shift


@pytest.mark.parametrize(("observed", "requested", "expected", "action"), [
    (10, 50, 10, "shift"),  # traffic is where golive left it
    (0, 10, None, "shift"),  # golive knows of no earlier weight: nothing to compare
    (50, 50, 10, "already_there"),  # a repeat, or a redelivery after the change was made
    (30, 50, 10, "drift"),  # a human set 30% behind golive's back
    (0, 50, 10, "drift"),  # someone rolled back by hand: golive does not push traffic forward again
])
def test_shift_decision(observed, requested, expected, action):
    assert judge_shift(observed, requested, expected).action == action
