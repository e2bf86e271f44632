"""Whether an operator command applies to a run now (docs/running.md: Operating a run), as a pure rule.

A command that cannot apply changes nothing and says why: `approve` of a run not waiting at a gate (or at
another stage's gate), `abort` or `pause` of a run that ended, `pause` of a run rolling back or already
paused, `continue` of a run that is not paused, `retry` of a run that does not need a human. The coordinator
refuses such a command as it arrives, so a command sent around the CLI (or racing the run's end) is refused
too, instead of being recorded as if it had been heard.
"""

from __future__ import annotations

from golive.services.coordinator.saga import RunState
from golive.shared.commands import AbortRun, ApproveGate, ContinueRun, PauseRun, RetryRun
from golive.shared.envelope import Message


def where(state: RunState) -> str:
    """Where a run is, in a few words: its outcome, rolling back, the step in flight, or starting."""
    if state.finished:
        return state.outcome or ""
    if state.compensating:
        return "rolling back"
    return state.steps[state.position].name if state.position >= 0 else "starting"


def operator_refusal(command: Message, state: RunState) -> str | None:
    """Why ``command`` cannot apply to the run in ``state`` (the fold of its events), or None when it can."""
    run_id = state.run_id
    if isinstance(command, AbortRun):
        return f"run {run_id} already ended: {state.outcome}; nothing to abort" if state.finished else None
    if isinstance(command, PauseRun):
        if state.finished:
            return f"run {run_id} already ended: {state.outcome}; nothing to pause"
        if state.compensating:
            return (f"run {run_id} is rolling back; a pause holds only a run going forward (`golive abort` is already "
                    "in effect)")
        if state.paused_by:
            return f"run {run_id} is already paused ({state.paused_by}); `golive continue {run_id}` lets it go on"
        return None
    if isinstance(command, ContinueRun):
        if state.paused_by and not state.finished and not state.compensating:
            return None
        return f"run {run_id} is not paused (it is at: {where(state)}); nothing to continue"
    if isinstance(command, RetryRun):
        if state.outcome == "needs_human":
            return None
        return (f"run {run_id} does not need a human (it is: {where(state)}); only a run that ended needs_human has "
                "compensations to retry")
    if isinstance(command, ApproveGate):
        step = state.steps[state.position] if state.position >= 0 else None
        if state.finished or state.compensating or state.retry_at is not None or step is None or step.command is not None:
            return f"run {run_id} is not waiting for an approval (it is at: {where(state)})"
        if command.stage is not None and step.stage is None:  # a preflight gate: before any canary stage
            return (f"run {run_id} waits at the preflight gate {step.name} ({step.prompt}), before any canary stage, "
                    f"not at stage {command.stage}: `golive approve {run_id}` without --stage opens it")
        if command.stage is not None and step.stage != command.stage:
            return f"run {run_id} waits at {step.name}, not at stage {command.stage}"
        return None
    return None
