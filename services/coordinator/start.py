"""Starting a run: its steps from the plan, and the take of its traffic target before the first of them.

Before its first step a run takes its traffic target (position -1, TakeTrafficTarget): one run per target at a
time. Refused (another run holds it), the run ends at once with the holder's run id and nothing to undo; taken,
the canary weight the provider read back is what the first shift expects to find.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from golive.services.coordinator.compensation import fail
from golive.services.coordinator.deadlines import timeout_reason
from golive.services.coordinator.forward import send_step
from golive.services.coordinator.retries import schedule_retry
from golive.services.coordinator.saga_state import TAKE_STEP, Output, RunState, SendCommand, step_command_id
from golive.services.coordinator.steps import build_steps, take_command
from golive.shared.envelope import Envelope
from golive.shared.events import CommandFailed, RunStarted, StepTimedOut, TrafficTargetTaken
from golive.shared.plan import plan_of


def start(envelope: Envelope, started: RunStarted) -> tuple[RunState, list[Output]]:
    """A new run from its RunStarted: take its traffic target first when it has one, else send its first step."""
    plan = plan_of(started)
    take = take_command(plan, started.deploy_id, started.previous_deploy_id) if started.takes_traffic_target else None
    state = RunState(
        run_id=envelope.runid,
        plan=plan,
        deploy_id=started.deploy_id,
        previous_deploy_id=started.previous_deploy_id,
        started_at=envelope.time,
        steps=tuple(build_steps(plan, started.deploy_id, started.previous_deploy_id)),
        window_cutoff=(
            started.window_ends_at - timedelta(seconds=plan.window.rollback)
            if started.window_ends_at and plan.window.at_end == "rollback" else None
        ),
        take=take,
    )
    # announcing the run is the notifier's: it reads RunStarted from the event stream
    if take is not None:
        return _send_take(state, envelope.time)
    return send_step(state, 0, envelope.time)


def _send_take(state: RunState, now: datetime) -> tuple[RunState, list[Output]]:
    """Take the run's traffic target before anything runs: a run that cannot hold it must not start."""
    command_id = step_command_id(state, -1)
    state = replace(state, in_flight=command_id, deadline=now + timedelta(seconds=state.plan.timeouts.step))
    assert state.take is not None  # _send_take is called only for a run that has a traffic target to take
    return state, [SendCommand(command_id, state.take)]


def on_take_result(state: RunState, envelope: Envelope) -> tuple[RunState, list[Output]]:
    """Taken: remember the weight read back (the first shift expects it) and start. Refused or failed: the run
    ends with nothing to undo, since it changed nothing (a take that timed out ends with its run, too)."""
    data = envelope.data
    if isinstance(data, TrafficTargetTaken):
        return send_step(replace(state, target_weight=data.weight), 0, envelope.time)
    if isinstance(data, CommandFailed):
        if data.failure == "transient" and state.attempt < state.plan.retries.attempts:
            return schedule_retry(state, f"{TAKE_STEP} failed: {data.reason}", envelope.time)
        refused = data.failure == "invalid"  # another run holds the target (or the run may not take it)
        return fail(state, f"{TAKE_STEP} {'refused' if refused else 'failed'}: {data.reason}", envelope.time,
                     cause="refused" if refused else "service_failed")
    if isinstance(data, StepTimedOut):
        return fail(state, timeout_reason(state, data), envelope.time, cause="timeout")
    return state, []  # not an answer to a take
