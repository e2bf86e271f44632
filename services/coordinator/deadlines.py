"""Time in the saga: the shell's Tick against a step's deadline, a backoff's end and the maintenance window.

The clock only ever says so as an event (StepTimedOut, RetryDue, WindowClosing) and changes nothing: the event,
once folded, fails the step, sends the next try or rolls the run back, so a replay of the events rebuilds the same
run without a clock. A paused run's step timeout waits; `golive continue` gives it back the time it was paused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from golive.services.coordinator.saga_state import EmitEvent, Output, RunState, awaited_step, holding
from golive.shared.events import RetryDue, StepTimedOut, WindowClosing


def on_tick(state: RunState | None, now: datetime) -> tuple[RunState | None, list[Output]]:
    """Past the deadline (or a backoff), say so as an event and change nothing: the event, once folded,
    fails the step (or sends the next try)."""
    if (state is not None and not state.finished and not state.compensating and state.window_cutoff
            and now >= state.window_cutoff):
        closing = WindowClosing(ends_at=state.window_cutoff + timedelta(seconds=state.plan.window.rollback),
                                rollback_s=state.plan.window.rollback)
        return state, [EmitEvent(f"{state.run_id}/window_closing", closing)]
    if state is not None and not state.finished and state.retry_at is not None:
        if now < state.retry_at:
            return state, []
        name, ref = awaited_step(state)
        due = RetryDue(step=name, at=ref, attempt=state.attempt + 1)
        return state, [EmitEvent(f"{state.run_id}/retrydue/{state.in_flight}", due, correlationid=state.in_flight)]
    if state is None or state.finished or state.deadline is None or state.in_flight is None or now < state.deadline:
        return state, []
    if holding(state):
        return state, []  # a paused step's timeout waits; continue gives it back the time it was paused
    name, ref = awaited_step(state)
    timed_out = StepTimedOut(step=name, at=ref, deadline=state.deadline)
    return state, [EmitEvent(f"{state.run_id}/timeout/{state.in_flight}", timed_out, correlationid=state.in_flight)]


def timeout_reason(state: RunState, timed_out: StepTimedOut) -> str:
    """Why a step (or the compensation undoing one) failed for want of an answer, as its failure says it."""
    what = timed_out.step.replace("undo:", "undoing ", 1)
    return f"{what} timed out: no answer by {timed_out.deadline.isoformat()}"
