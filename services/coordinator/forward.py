"""Moving a run forward: send the next step, open a gate on its approval, and judge a step's answer.

A step's compensation is registered before its command is sent. An answer passes the step unless it is a service
failure (a transient one is retried), a timeout, a hold's totals over a limit, a traffic drift (refused: that step
changed nothing, so its own compensation is dropped) or a wrong read-back; a hold that ended with too little
evidence goes to the plan's inconclusive policy (hold.py). A paused run keeps the step it would send next
(held_next) until `golive continue`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from golive.services.coordinator.analysis import inconclusive_hold, totals_failure
from golive.services.coordinator.compensation import fail
from golive.services.coordinator.deadlines import timeout_reason
from golive.services.coordinator.finish import finish
from golive.services.coordinator.hold import on_inconclusive_hold
from golive.services.coordinator.read_back import read_back_problem
from golive.services.coordinator.retries import schedule_retry
from golive.services.coordinator.saga_state import (
    Compensation,
    EmitEvent,
    Output,
    RunState,
    SendCommand,
    command_as_sent,
    holding,
    no_windows_judged,
    step_command_id,
)
from golive.services.coordinator.stage_verdict import stage_passed
from golive.services.coordinator.steps import Step, describe_step
from golive.shared.envelope import Envelope
from golive.shared.events import (
    ApprovalGranted,
    CommandFailed,
    MigrationsApplied,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    StepTimedOut,
    TrafficDrift,
)


def send_step(state: RunState, position: int, now: datetime) -> tuple[RunState, list[Output]]:
    """Send the step at ``position`` (its compensation registered first), or finish when every step passed."""
    if holding(state):
        # paused: keep where it would go; nothing is in flight, so no timeout fires and a late answer changes nothing
        return replace(state, held_next=position, in_flight=None, deadline=None), []
    if position >= len(state.steps):
        return finish(state, "succeeded", "every phase passed", now)
    step = state.steps[position]
    state = no_windows_judged(replace(state, attempt=1, retry_at=None, extension=None, inconclusive=None))
    command_id = step_command_id(state, position)
    compensations = state.compensations + ((Compensation(step.name, step.undo, step.ref.undone()),) if step.undo else ())
    state = replace(
        state, position=position, in_flight=command_id, compensations=compensations,
        deadline=now + timedelta(seconds=step.work_s + state.plan.timeouts.step),
    )
    detail = describe_step(step) if step.command else _describe_gate(state, step)
    started = EmitEvent(f"{state.run_id}/step/{position}",
                        PhaseStarted(phase=step.phase, step=step.name, at=step.ref, detail=detail))
    if (command := command_as_sent(state, step)) is None:  # a gate: nothing to send, a person approves it
        return state, [started]
    return state, [started, SendCommand(command_id, command)]


def _describe_gate(state: RunState, step: Step) -> str:
    if step.prompt:  # a preflight gate: approved without a stage
        return f"{step.prompt}: waiting for `golive approve {state.run_id}`"
    return f"waiting for `golive approve {state.run_id} --stage {step.stage}`"


def on_approval(state: RunState | None, approval: ApprovalGranted, now: datetime) -> tuple[RunState | None, list[Output]]:
    """An approval opens the gate the run waits at, if it names that stage (or none); otherwise nothing."""
    if state is None or state.finished or state.compensating or state.retry_at is not None or state.position < 0:
        return state, []
    step = state.steps[state.position]
    if step.command is not None or approval.stage not in (None, step.stage):
        return state, []
    return send_step(state, state.position + 1, now)


def on_step_result(state: RunState, envelope: Envelope) -> tuple[RunState, list[Output]]:
    """The answer to the step in flight: the step passes and the run moves on, or the step fails (or is retried)."""
    step = state.steps[state.position]
    data = envelope.data
    if isinstance(data, CommandFailed):
        if data.failure == "transient" and state.attempt < state.plan.retries.attempts:
            return schedule_retry(state, f"{step.name} failed: {data.reason}", envelope.time)
        return fail(state, f"{step.name} failed: {data.reason}", envelope.time, cause="service_failed",
                     probes_ended=True)
    if isinstance(data, StepTimedOut):
        return fail(state, timeout_reason(state, data), envelope.time, cause="timeout")
    if isinstance(data, ProbeCompleted | ProbesCompleted) and (why := totals_failure(data, step.kind == "hold")):
        # a hold also fails on its totals: windows each within limits can add up to a breach
        return fail(state, f"{step.name} failed: {why}", envelope.time, cause="threshold", probes_ended=True)
    if (step.kind == "hold" and isinstance(data, ProbeCompleted | ProbesCompleted)
            and (why := inconclusive_hold(state.tally, data))):
        return on_inconclusive_hold(state, step, data, why, envelope.time)
    if isinstance(data, TrafficDrift):
        reason = (f"{step.name} refused: {data.provider} sends {data.observed_weight}% to {data.canary}, "
                  f"golive expected {data.expected_weight}% (traffic changed by hand)")
        # refused: nothing was changed, so this step's own compensation has nothing to undo (a rollback now
        # would override the human); what earlier steps changed is still undone
        if state.compensations and state.compensations[-1].undoes == step.name:
            state = replace(state, compensations=state.compensations[:-1])
        return fail(state, reason, envelope.time, cause="drift")
    if problem := read_back_problem(step.command, data):
        return fail(state, f"{step.name} failed: {problem}", envelope.time, cause="read_back")
    if isinstance(data, MigrationsApplied):
        state = replace(state, notes=state.notes + tuple(f"{r.name}: {r.action}" for r in data.results))
    state, judged = stage_passed(state, step, data)
    state, outputs = send_step(state, state.position + 1, envelope.time)
    return state, judged + outputs
