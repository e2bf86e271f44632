"""Read-back after a traffic change, judged in one place: the canary weight a change must leave, and what is wrong
when the provider reads back another.

The traffic service reads the weight back after every change it makes (shift, rollback, promote) and reports
it as ``verified_weight`` without judging it; the saga judges every answer with ``read_back_problem``. A
rollback that changed nothing (its run never moved traffic there) is not judged: the weight it read back is
whatever stands, perhaps another run's.
"""

from __future__ import annotations

from golive.shared.commands import PromoteTraffic, RollbackTraffic, ShiftTraffic
from golive.shared.envelope import Message
from golive.shared.events import TrafficPromoted, TrafficRolledBack, TrafficShifted


def weight_after(command: Message | None) -> int | None:
    """The canary weight ``command`` must leave: a shift's weight, 0 after a rollback, 100 after a promote."""
    if isinstance(command, ShiftTraffic):
        return command.weight
    if isinstance(command, RollbackTraffic):
        return 0
    if isinstance(command, PromoteTraffic):
        return 100
    return None


def read_back_problem(command: Message | None, answer: Message) -> str | None:
    """What is wrong with the weight read back in ``answer`` to the traffic ``command``, or None when it is right."""
    if not isinstance(answer, TrafficShifted | TrafficRolledBack | TrafficPromoted):
        return None
    if isinstance(answer, TrafficRolledBack) and not answer.changed:
        return None
    expected = weight_after(command)
    if expected is None or answer.verified_weight == expected:
        return None
    return f"{answer.provider} reads back {answer.verified_weight}%, expected {expected}%"
