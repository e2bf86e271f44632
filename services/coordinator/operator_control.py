"""Operator control of a running saga: `golive abort`, `pause`, `continue` and `retry`, as events folded in.

Whether such a command applies at all is services/coordinator/control.py's (the coordinator refuses it as it
arrives); here is what it does to a run. A pause holds the run before its next step and never holds a rollback
back; an abort fails the step in flight; a retry undoes again what a needs_human run left.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from golive.services.coordinator.compensation import fail, send_compensation
from golive.services.coordinator.forward import send_step
from golive.services.coordinator.saga_state import Output, RunState
from golive.services.coordinator.stage_verdict import stage_verdict
from golive.shared.events import AbortRequested, PauseRequested, RetryRequested


def on_abort(state: RunState | None, abort: AbortRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """An abort fails the step in flight at once; during compensation or after the end it changes nothing."""
    if state is None or state.finished or state.compensating:
        return state, []
    return fail(state, f"aborted by {abort.requested_by}: {abort.reason}", now, cause="aborted")


def on_pause(state: RunState | None, pause: PauseRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """Hold the run before its next step. The step in flight goes on (a hold keeps measuring) and its
    failures still roll back; only moving on waits. The step's timeout stops counting until continue."""
    if state is None or state.finished or state.compensating or state.paused_by is not None:
        return state, []
    return replace(state, paused_by=f"{pause.requested_by}: {pause.reason}", paused_at=now), []


def on_continue(state: RunState | None, now: datetime, by: str = "") -> tuple[RunState | None, list[Output]]:
    """Release a paused run: send the step it held back, or give the step in flight back the time it was paused."""
    if state is None or state.paused_by is None:
        return state, []
    paused_for = now - (state.paused_at or now)
    held, state = state.held_next, replace(state, paused_by=None, paused_at=None, held_next=None)
    if state.finished or state.compensating:
        return state, []
    judged: list[Output] = []
    if state.inconclusive is not None:  # a person looked at the inconclusive hold and lets the stage pass
        step = state.steps[state.position]
        why = f"{step.name} inconclusive, continued by {by}: {state.inconclusive}"
        state, judged = stage_verdict(replace(state, inconclusive=None), step.stage or 0, "pass", why)
    if held is not None:
        state, outputs = send_step(state, held, now)
        return state, judged + outputs
    if state.deadline is not None:
        state = replace(state, deadline=state.deadline + paused_for)
    return state, []


def on_retry(state: RunState | None, retry: RetryRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """A needs_human run undoes what is left again, from the compensation that failed (newest first, as before)."""
    if state is None or state.outcome != "needs_human":
        return state, []
    why = f"; {retry.reason}" if retry.reason else ""
    state = replace(state, outcome=None, compensating=True, retry_round=state.retry_round + 1,
                    failure=f"{state.failure}; retried by {retry.requested_by}{why}")
    return send_compensation(state, now)
