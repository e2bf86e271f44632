"""The go-live saga as a pure function: ``decide(state, input) -> (state, outputs)``.

No I/O and no clock: time comes from the inputs (event timestamps, ticks), so replaying a run's events
rebuilds the same state and the same deadlines after a restart.

A run is a list of steps built from the plan (steps.py), in runbook order: preflight (checks and manual
gates), migrate, smoke checks, each canary stage's [gate,] shift and hold, final validation, lock-in. Each
step is one command; the step's compensation is registered *before* the command is sent,
so a step whose outcome is unknown (it timed out) is undone too. On any failure the registered
compensations run newest first; if one fails the run ends needs_human, naming what is left to undo.

decide() only says which rule an input goes to; each rule lives in the module named for it:

- saga_state.py: RunState, the outputs (SendCommand, EmitEvent, StopProbes), and the state's queries (the step in
  flight, the command awaited and its id, whether a pause holds the run);
- start.py: a new run, and the take of its traffic target before its first step;
- forward.py: sending the next step, a gate's approval, and judging a step's answer;
- hold.py: a stage hold's windows judged as they close, and the plan's policy for an inconclusive hold;
- stage_verdict.py: a stage's verdict (StageJudged), once per stage;
- operator_control.py: `golive abort`, `pause`, `continue` and `retry` folded into the run;
- deadlines.py and retries.py: a step's timeout, and the next try of a step that failed transiently;
- compensation.py: failing the step in flight and undoing what the run changed, newest first;
- finish.py: the run's outcome (RunFinished).
"""

from __future__ import annotations

from golive.services.coordinator.compensation import fail, on_compensation_result
from golive.services.coordinator.deadlines import on_tick
from golive.services.coordinator.forward import on_approval, on_step_result
from golive.services.coordinator.hold import on_window
from golive.services.coordinator.operator_control import on_abort, on_continue, on_pause, on_retry
from golive.services.coordinator.retries import resend
from golive.services.coordinator.saga_state import (
    EmitEvent,
    Output,
    RunState,
    SendCommand,
    StopProbes,
    Tick,
    awaited_command,
)
from golive.services.coordinator.start import on_take_result, start
from golive.shared.envelope import Envelope
from golive.shared.events import (
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
        return on_abort(state, data, item.time)
    if isinstance(data, PauseRequested):
        return on_pause(state, data, item.time)
    if isinstance(data, ContinueRequested):
        return on_continue(state, item.time, data.requested_by)
    if isinstance(data, RetryRequested):
        return on_retry(state, data, item.time)
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
