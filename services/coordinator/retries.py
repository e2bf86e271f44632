"""Retrying a step or a compensation that failed transiently (or timed out), within the plan's ``retries``.

The next try waits out an exact backoff (no jitter: a replay must schedule the same retry_at), is announced as
StepRetrying, and is sent under a new command id (the failed one was acked and deduplicated).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from golive.services.coordinator.saga_state import (
    EmitEvent,
    Output,
    RunState,
    awaited_command,
    awaited_step,
    current_step,
    no_windows_judged,
)
from golive.shared.backoff import Backoff
from golive.shared.events import StepRetrying


def schedule_retry(state: RunState, reason: str, now: datetime) -> tuple[RunState, list[Output]]:
    """Wait out the backoff before the next try of the awaited command; nothing is awaited meanwhile."""
    policy = state.plan.retries
    # exact (no jitter): the saga is replayed from its events, and a replay must schedule the same retry_at
    delay = Backoff(base_s=policy.backoff, cap_s=policy.max_backoff).delay(state.attempt)
    state = replace(state, retry_at=now + timedelta(seconds=delay), deadline=None)
    name, ref = awaited_step(state)
    retrying = StepRetrying(step=name, at=ref, attempt=state.attempt, reason=reason, retry_at=now + timedelta(seconds=delay))
    return state, [EmitEvent(f"{state.run_id}/retry/{state.in_flight}", retrying)]


def resend(state: RunState, now: datetime) -> tuple[RunState, list[Output]]:
    """The next try of the awaited command, under a new id (the failed one was acked and deduplicated)."""
    work_s = 0.0 if state.compensating else current_step(state).work_s
    state = replace(state, attempt=state.attempt + 1, retry_at=None)
    if not state.compensating:
        state = no_windows_judged(state)  # a hold tried again starts over: its windows count anew
    command = awaited_command(state)
    assert command is not None  # a try is resent only while a command is awaited
    state = replace(state, in_flight=command.id, deadline=now + timedelta(seconds=work_s + state.plan.timeouts.step))
    return state, [command]
