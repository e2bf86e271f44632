"""The go-live saga as a pure function: ``decide(state, input) -> (state, outputs)``.

No I/O and no clock: time comes from the inputs (event timestamps, ticks), so replaying a run's events
rebuilds the same state and the same deadlines after a restart.

A run is a list of steps built from the plan (steps.py), in runbook order: preflight (checks and manual
gates), migrate, smoke checks, each canary stage's [gate,] shift and hold, final validation, lock-in. Each
step is one command; the step's compensation is registered *before* the command is sent,
so a step whose outcome is unknown (it timed out) is undone too. On any failure the registered
compensations run newest first; if one fails the run ends needs_human, naming what is left to undo.

Before its first step a run takes its traffic target (position -1, TakeTrafficTarget): one run per target at a
time. Refused (another run holds it), the run ends at once with the holder's run id and nothing to undo;
taken, the canary weight the provider read back is what the first shift expects to find. A shift refused for
drift changed nothing, so its own compensation is dropped.

A stage's hold is one RunProbes (its checks plus the guard probe). Its windows are judged as they close
(services/coordinator/analysis.py): failed windows are counted per stage, consecutive ones per check, and
reaching analysis.failure_limit or consecutive_failure_limit, or one guard window over a limit, fails the
stage at once; the probes still running are then stopped (StopProbes).

A hold that ends with too little evidence (analysis.inconclusive_hold: a check or the guard without a conclusive
window, more inconclusive windows than conclusive ones, or inconclusive totals) is never a quiet pass; the plan's
``analysis.inconclusive`` decides: ``pause`` (the default) holds the run as `golive pause` does, saying why with
the counts (a PauseRequested by ``golive``), until `golive continue` (the stage then passes, the continue named
in its verdict) or `golive abort`; ``fail`` counts inconclusive windows as failed ones and fails such a hold;
``extend`` sends the hold once more (same length, id suffix ``.extended``, its windows added to the same
tally), then pauses if it is still inconclusive.

A stage's verdict is the coordinator's to say, once, as its own event (StageJudged): pass when the stage's last
step (its hold, or its shift when it holds nothing) passed, fail when the run fails in one of its steps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.coordinator.compensation import fail, on_compensation_result, send_compensation
from services.coordinator.deadlines import on_tick
from services.coordinator.forward import on_approval, on_step_result, send_step
from services.coordinator.hold import on_window
from services.coordinator.retries import resend
from services.coordinator.saga_state import (
    EmitEvent,
    Output,
    RunState,
    SendCommand,
    StopProbes,
    Tick,
    awaited_command,
)
from services.coordinator.stage_verdict import stage_verdict
from services.coordinator.start import on_take_result, start
from shared.envelope import Envelope
from shared.events import (
    AbortRequested,
    ApprovalGranted,
    CommandFailed,
    ContinueRequested,
    MigrationsApplied,
    MigrationsReverted,
    PauseRequested,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RetryDue,
    RetryRequested,
    RunStarted,
    StepTimedOut,
    TrafficDrift,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
    WindowClosing,
)

# what the coordinator's shell, its tests and its tools take from the saga
__all__ = ["EmitEvent", "Output", "RunState", "SendCommand", "StopProbes", "Tick", "awaited_command", "decide"]


# What can answer the command in flight: a result, a failure, or the saga's own timeout and retry events.
# Anything else correlated to the command is a report while the work goes on and changes nothing.
ANSWERS = (
    MigrationsApplied, MigrationsReverted, ProbeCompleted, ProbesCompleted, TrafficShifted, TrafficRolledBack, TrafficPromoted,
    TrafficDrift, TrafficTargetTaken, CommandFailed, StepTimedOut, RetryDue,
)


def decide(state: RunState | None, item: Envelope | Tick) -> tuple[RunState | None, list[Output]]:
    """Fold one input into the run; return the new state and what to publish."""
    if isinstance(item, Tick):
        return on_tick(state, item.now)
    data = item.data
    if isinstance(data, RunStarted):
        if state is not None:
            return state, []  # a duplicate start changes nothing
        return start(item, data)
    if isinstance(data, AbortRequested):
        return _on_abort(state, data, item.time)
    if isinstance(data, PauseRequested):
        return _on_pause(state, data, item.time)
    if isinstance(data, ContinueRequested):
        return _on_continue(state, item.time, data.requested_by)
    if isinstance(data, RetryRequested):
        return _on_retry(state, data, item.time)
    if isinstance(data, WindowClosing):
        if state is None or state.finished or state.compensating:
            return state, []
        reason = (f"the maintenance window closes at {data.ends_at:%H:%M %Z} and a rollback needs "
                  f"{data.rollback_s / 60:g} min: rolling back before it closes")
        return fail(state, reason, item.time, cause="window")
    if isinstance(data, ApprovalGranted):
        return on_approval(state, data, item.time)
    if isinstance(data, ProbeWindow):
        return on_window(state, data, item.time)
    if state is None or state.finished or item.correlationid != state.in_flight or state.in_flight is None:
        return state, []  # not an answer we wait for (another run's, a late or duplicate answer)
    if not isinstance(data, ANSWERS):
        return state, []  # a report while the work goes on (progress, old transactions): not its answer
    if isinstance(data, RetryDue):
        return resend(state, item.time)
    if state.retry_at is not None:
        return state, []  # waiting out a backoff: a late answer to the failed try changes nothing
    if state.compensating:
        return on_compensation_result(state, item)
    if state.position < 0:
        return on_take_result(state, item)
    return on_step_result(state, item)


def _on_abort(state: RunState | None, abort: AbortRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """An abort fails the step in flight at once; during compensation or after the end it changes nothing."""
    if state is None or state.finished or state.compensating:
        return state, []
    return fail(state, f"aborted by {abort.requested_by}: {abort.reason}", now, cause="aborted")


def _on_pause(state: RunState | None, pause: PauseRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """Hold the run before its next step. The step in flight goes on (a hold keeps measuring) and its
    failures still roll back; only moving on waits. The step's timeout stops counting until continue."""
    if state is None or state.finished or state.compensating or state.paused_by is not None:
        return state, []
    return replace(state, paused_by=f"{pause.requested_by}: {pause.reason}", paused_at=now), []


def _on_continue(state: RunState | None, now: datetime, by: str = "") -> tuple[RunState | None, list[Output]]:
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


def _on_retry(state: RunState | None, retry: RetryRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """A needs_human run undoes what is left again, from the compensation that failed (newest first, as before)."""
    if state is None or state.outcome != "needs_human":
        return state, []
    why = f"; {retry.reason}" if retry.reason else ""
    state = replace(state, outcome=None, compensating=True, retry_round=state.retry_round + 1,
                    failure=f"{state.failure}; retried by {retry.requested_by}{why}")
    return send_compensation(state, now)


# --- starting ----------------------------------------------------------------------------------


# --- moving forward ----------------------------------------------------------------------------


# --- per-window analysis of a stage hold -----------------------------------------------------------


# --- failing and compensating ------------------------------------------------------------------


# --- finishing ---------------------------------------------------------------------------------


