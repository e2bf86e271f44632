"""Taking a run over, the pure part: where a run's events stand, and which of them a coordinator already handled.

A coordinator that starts driving a run (after a restart, or taken over from one that died) folds the history
silently up to the last event a coordinator already handled, and applies the events after it with their outputs: an
answer its dead driver never decided on decides now. The shell that does so is service.py's RunDriver.
"""

from __future__ import annotations

from golive.services.coordinator.saga import RunState, decide
from golive.shared.envelope import Envelope
from golive.shared.events import RetryRequested, RunFinished


def is_over(history: list[Envelope]) -> bool:
    """A run is over only when its run_finished is in the history, after any `golive retry` that reopened it: the
    fold of its events can reach an outcome whose run_finished (and final message, and artifacts) nobody sent."""
    last_finish = max((i for i, e in enumerate(history) if isinstance(e.data, RunFinished)), default=-1)
    last_retry = max((i for i, e in enumerate(history) if isinstance(e.data, RetryRequested)), default=-1)
    return last_finish > last_retry


def fold(state: RunState | None, events: list[Envelope]) -> RunState | None:
    """The run after ``events``, decided without publishing anything."""
    for envelope in events:
        state, _ = decide(state, envelope)
    return state


def handled_through(history: list[Envelope], coordinator_source: str) -> int:
    """Index of the last event of ``history`` a coordinator already handled (-1: none).

    A coordinator's decision is an event of its own whose cause is an event of the run (or the clock: no
    cause); what its command handlers record (run started, abort, approval) is caused by a command instead.
    Decisions are published while their cause is handled, in stream order: the cause of the last decision
    was handled, and everything before it. A decision of the clock was handled only up to the event before it.
    """
    position = {envelope.id: i for i, envelope in enumerate(history)}
    for k in range(len(history) - 1, -1, -1):
        envelope = history[k]
        if envelope.source != coordinator_source:
            continue
        if envelope.causationid is None:
            return k - 1
        if envelope.causationid in position:
            return position[envelope.causationid]
    return -1
