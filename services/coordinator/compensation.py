"""Failing a run and compensating: undo what its steps changed, newest first.

A step's compensation is registered *before* its command is sent (services/coordinator/forward.py), so a step
whose outcome is unknown (it timed out) is undone too. On a failure the probes still measuring for the step are
stopped (StopProbes), the failed stage is judged, and the registered compensations run one at a time; one that
fails (after its retries), or a rollback whose read-back is wrong, ends the run needs_human, naming what is left.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from golive.services.coordinator.deadlines import timeout_reason
from golive.services.coordinator.finish import finish
from golive.services.coordinator.read_back import read_back_problem
from golive.services.coordinator.retries import schedule_retry
from golive.services.coordinator.saga_state import (
    EmitEvent,
    Output,
    RunState,
    SendCommand,
    StopProbes,
    compensation_command_id,
    current_step,
    round_suffix,
)
from golive.services.coordinator.stage_verdict import stage_verdict
from golive.shared.commands import RunProbe, RunProbes
from golive.shared.envelope import Envelope
from golive.shared.events import CommandFailed, CompensationStarted, StepFailed, StepTimedOut


def fail(state: RunState, reason: str, now: datetime, cause: str = "failed",
         probes_ended: bool = False) -> tuple[RunState, list[Output]]:
    """Fail the step in flight and start compensating. Probes still running for it are stopped (they would
    measure a deployment that is being rolled back) unless ``probes_ended``: their answer is what failed it."""
    step = current_step(state)
    running = (state.in_flight if isinstance(step.command, RunProbe | RunProbes) and not probes_ended
               and state.retry_at is None else None)
    state = replace(state, failure=reason, failed_at=now, compensating=True, in_flight=None, deadline=None,
                    retry_at=None)
    outputs: list[Output] = [
        EmitEvent(f"{state.run_id}/failed", StepFailed(step=step.name, at=step.ref, reason=reason, cause=cause)),
    ]
    if step.stage is not None:
        state, judged = stage_verdict(state, step.stage, "fail", reason)
        outputs += judged
    if running is not None:
        outputs.append(StopProbes(running, f"run {state.run_id} is rolling back: {reason}"))
    state, more = send_compensation(state, now)
    return state, outputs + more


def send_compensation(state: RunState, now: datetime) -> tuple[RunState, list[Output]]:
    """Send the newest compensation not yet done; with none left, the run has rolled back."""
    if not state.compensations:
        return finish(state, "rolled_back", state.failure or "rolled back", now)
    comp = state.compensations[-1]
    index = len(state.compensations) - 1
    state = replace(state, attempt=1, retry_at=None)
    command_id = compensation_command_id(state, index)
    state = replace(state, in_flight=command_id, deadline=now + timedelta(seconds=state.plan.timeouts.step))
    return state, [
        EmitEvent(f"{state.run_id}/undo/{index}{round_suffix(state, '/')}",
                  CompensationStarted(step=f"undo:{comp.undoes}", at=comp.ref, undoes=comp.undoes)),
        SendCommand(command_id, comp.command),
    ]


def on_compensation_result(state: RunState, envelope: Envelope) -> tuple[RunState, list[Output]]:
    """The answer to the compensation in flight: the next one, a retry, or needs_human when it failed for good."""
    data = envelope.data
    undoing = state.compensations[-1].undoes
    problem = read_back_problem(state.compensations[-1].command, data)  # a rollback that did not take
    retryable = (isinstance(data, StepTimedOut) or (isinstance(data, CommandFailed) and data.failure != "invalid")
                 or problem is not None)
    if retryable and state.attempt < state.plan.retries.attempts:
        why = (timeout_reason(state, data) if isinstance(data, StepTimedOut)
               else f"undoing {undoing} failed: {problem or (data.reason if isinstance(data, CommandFailed) else '')}")
        return schedule_retry(state, why, envelope.time)
    if problem is not None:
        return finish(state, "needs_human", f"{state.failure}; then undoing {undoing} failed: {problem}", envelope.time)
    if isinstance(envelope.data, StepTimedOut):
        return finish(state, "needs_human", f"{state.failure}; then {timeout_reason(state, envelope.data)}", envelope.time)
    if isinstance(envelope.data, CommandFailed):
        reason = f"{state.failure}; then undoing {state.compensations[-1].undoes} failed: {envelope.data.reason}"
        return finish(state, "needs_human", reason, envelope.time)
    state = replace(state, compensations=state.compensations[:-1])
    return send_compensation(state, envelope.time)
