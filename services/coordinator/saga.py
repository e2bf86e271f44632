"""The go-live saga as a pure function: ``decide(state, input) -> (state, outputs)``.

No I/O and no clock: time comes from the inputs (event timestamps, ticks), so replaying a run's events
rebuilds the same state and the same deadlines after a restart.

A run is a list of steps built from the plan (migrate, smoke checks, each canary stage's shift and
checks). Each step is one command; the step's compensation is registered *before* the command is sent,
so a step whose outcome is unknown (it timed out) is undone too. On any failure the registered
compensations run newest first; if one fails the run ends needs_human, naming what is left to undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.coordinator.plan import Check, Plan
from shared.commands import (
    ApplyMigrations,
    MigrationStatement,
    RevertMigrations,
    RollbackTraffic,
    RunProbe,
    ShiftTraffic,
    SqlProbeSpec,
)
from shared.commands import HttpProbeSpec, PgHealthProbeSpec
from shared.envelope import Envelope, Message
from shared.events import (
    AbortRequested,
    ApprovalGranted,
    CommandFailed,
    CompensationStarted,
    MigrationsApplied,
    MigrationsReverted,
    Phase,
    PhaseStarted,
    ProbeCompleted,
    RetryDue,
    RunFinished,
    RunStarted,
    StepFailed,
    StepRetrying,
    StepTimedOut,
    TrafficDrift,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    WindowClosing,
)


@dataclass(frozen=True)
class Step:
    name: str
    phase: Phase
    command: Message | None  # None: a gate, which waits for an approval instead of a service
    undo: Message | None = None
    # seconds of work the command itself asks for (a probe's duration); the plan's step timeout comes on top
    work_s: float = 0.0


@dataclass(frozen=True)
class Compensation:
    undoes: str
    command: Message


@dataclass(frozen=True)
class Tick:
    """The shell's clock, fed in so that decide() stays pure."""

    now: datetime


@dataclass(frozen=True)
class SendCommand:
    id: str
    data: Message


@dataclass(frozen=True)
class EmitEvent:
    id: str
    data: Message
    correlationid: str | None = None  # default: that of the input that caused it


Output = SendCommand | EmitEvent


@dataclass(frozen=True)
class RunState:
    run_id: str
    plan: Plan
    deploy_id: str
    previous_deploy_id: str | None
    started_at: datetime
    steps: tuple[Step, ...]
    position: int = -1  # index of the step in flight
    in_flight: str | None = None  # id of the command awaited
    deadline: datetime | None = None
    compensations: tuple[Compensation, ...] = ()
    compensating: bool = False
    failure: str | None = None
    outcome: str | None = None
    notes: tuple[str, ...] = field(default=())
    attempt: int = 1  # of the command in flight
    window_cutoff: datetime | None = None  # past it, the run rolls back so the rollback fits in the window
    failed_at: datetime | None = None
    retry_at: datetime | None = None  # set while waiting out a backoff

    @property
    def finished(self) -> bool:
        return self.outcome is not None


# What can answer the command in flight: a result, a failure, or the saga's own timeout and retry events.
# Anything else correlated to the command is a report while the work goes on and changes nothing.
ANSWERS = (
    MigrationsApplied, MigrationsReverted, ProbeCompleted, TrafficShifted, TrafficRolledBack, TrafficPromoted,
    TrafficDrift, CommandFailed, StepTimedOut, RetryDue,
)


def decide(state: RunState | None, item: Envelope | Tick) -> tuple[RunState | None, list[Output]]:
    """Fold one input into the run; return the new state and what to publish."""
    if isinstance(item, Tick):
        return _on_tick(state, item.now)
    data = item.data
    if isinstance(data, RunStarted):
        if state is not None:
            return state, []  # a duplicate start changes nothing
        return _start(item, data)
    if isinstance(data, AbortRequested):
        return _on_abort(state, data, item.time)
    if isinstance(data, WindowClosing):
        if state is None or state.finished or state.compensating:
            return state, []
        reason = (f"the maintenance window closes at {data.ends_at:%H:%M %Z} and a rollback needs "
                  f"{data.rollback_s / 60:g} min: rolling back before it closes")
        return _fail(state, reason, item.time, cause="window")
    if isinstance(data, ApprovalGranted):
        return _on_approval(state, data, item.time)
    if state is None or state.finished or item.correlationid != state.in_flight or state.in_flight is None:
        return state, []  # not an answer we wait for (another run's, a late or duplicate answer)
    if not isinstance(data, ANSWERS):
        return state, []  # a report while the work goes on (progress, old transactions): not its answer
    if isinstance(data, RetryDue):
        return _resend(state, item.time)
    if state.retry_at is not None:
        return state, []  # waiting out a backoff: a late answer to the failed try changes nothing
    if state.compensating:
        return _on_compensation_result(state, item)
    return _on_step_result(state, item)


def _on_abort(state: RunState | None, abort: AbortRequested, now: datetime) -> tuple[RunState | None, list[Output]]:
    """An abort fails the step in flight at once; during compensation or after the end it changes nothing."""
    if state is None or state.finished or state.compensating:
        return state, []
    return _fail(state, f"aborted by {abort.requested_by}: {abort.reason}", now, cause="aborted")


def _timeout_reason(state: RunState, timed_out: StepTimedOut) -> str:
    what = timed_out.step.replace("undo:", "undoing ", 1)
    return f"{what} timed out: no answer by {timed_out.deadline.isoformat()}"


# --- starting ----------------------------------------------------------------------------------


def _start(envelope: Envelope, started: RunStarted) -> tuple[RunState, list[Output]]:
    plan = Plan.model_validate(started.plan)
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
    )
    # announcing the run is the notifier's: it reads RunStarted from the event stream
    return _send_step(state, 0, envelope.time)


def build_steps(plan: Plan, deploy_id: str, previous: str | None) -> list[Step]:
    """The run's steps in runbook order, each with the compensation that undoes it."""
    steps: list[Step] = []
    db_env = plan.database.url_env
    if plan.migrations.statements:
        migrations = plan.migrations
        statements = [MigrationStatement(name=s.name, sql=s.sql, waive=s.waive, reapply=s.reapply)
                      for s in migrations.statements]
        undo = (
            RevertMigrations(database_url_env=db_env, statements=statements, session=migrations.session,
                             retry=migrations.retry)
            if plan.rollback.drop_indexes
            else None
        )
        steps.append(Step(
            "migrate", "migrate",
            ApplyMigrations(database_url_env=db_env, statements=statements, session=migrations.session,
                            preflight=migrations.preflight, retry=migrations.retry),
            undo,
        ))
    for check in plan.smoke:
        steps.append(_check_step(plan, check, f"smoke:{check.probe}", "smoke", check.duration or 0.0))
    provider = plan.traffic.provider
    previous_weight = 0  # the canary gets no traffic before its first stage
    for n, stage in enumerate(plan.canary.stages, start=1):
        if stage.approval:
            # a gate's deadline (work + step timeout) is the plan's approval timeout
            steps.append(Step(f"stage{n}:gate", "canary", None, work_s=plan.timeouts.approval - plan.timeouts.step))
        undo = RollbackTraffic(provider=provider, canary=deploy_id, to=previous) if n == 1 else None
        steps.append(Step(
            f"stage{n}:shift:{stage.weight}", "canary",
            # expected_previous_weight: the traffic service refuses (traffic_drift) if a human changed it since
            ShiftTraffic(provider=provider, canary=deploy_id, stable=previous, weight=stage.weight,
                         expected_previous_weight=previous_weight),
            undo,
        ))
        previous_weight = stage.weight
        for check in stage.checks:
            duration = check.duration if check.duration is not None else stage.hold
            steps.append(_check_step(plan, check, f"stage{n}:check:{check.probe}", "canary", duration, f"stage {n} ({stage.weight}%)"))
    return steps


def _check_step(plan: Plan, check: Check, name: str, phase: Phase, duration: float, label: str = "") -> Step:
    probe = plan.probes[check.probe]
    database_url_env = probe.database_url_env or plan.database.url_env
    spec: SqlProbeSpec | HttpProbeSpec | PgHealthProbeSpec
    if probe.kind == "http":
        spec = HttpProbeSpec(
            name=check.probe, url=probe.url, method=probe.method, headers=probe.headers, headers_env=probe.headers_env,
            body=probe.body, expect_status=probe.expect_status, body_contains=probe.body_contains, timeout_ms=probe.timeout_ms,
        )
    elif probe.kind == "pg_health":
        spec = PgHealthProbeSpec(
            name=check.probe, database_url_env=database_url_env, replica_url_envs=probe.replica_url_envs,
            long_transaction_s=probe.long_transaction, timeout_ms=probe.timeout_ms,
        )
    else:
        spec = SqlProbeSpec(
            name=check.probe, database_url_env=database_url_env, query=probe.query, params=probe.params,
            params_from=probe.params_from, allow_writes=probe.allow_writes, timeout_ms=probe.timeout_ms,
        )
    command = RunProbe(probe=spec, duration_s=max(duration, 0.001), concurrency=check.concurrency, load=check.load,
                       window_s=check.window, thresholds=check.thresholds, label=label or phase)
    return Step(name, phase, command, work_s=duration + check.load.warmup_s)


# --- moving forward ----------------------------------------------------------------------------


def awaited_command(state: RunState | None) -> SendCommand | None:
    """The command the run waits on, to send again after a restart.

    A replay folds the inputs, not our publishes: a coordinator killed between deciding and publishing
    leaves a state that awaits a command nobody sent. Sending it again is safe: the id is the same, so
    JetStream drops it within the duplicate window, and services are idempotent beyond it.
    """
    if state is None or state.finished or state.in_flight is None:
        return None
    if state.compensating:
        index = len(state.compensations) - 1
        return SendCommand(_compensation_command_id(state, index), state.compensations[index].command)
    command = state.steps[state.position].command
    return SendCommand(_step_command_id(state, state.position), command) if command else None


def _step_command_id(state: RunState, position: int) -> str:
    return f"{state.run_id}.{position}.{state.steps[position].name}{_try_suffix(state)}"


def _compensation_command_id(state: RunState, index: int) -> str:
    return f"{state.run_id}.undo.{index}.{state.compensations[index].undoes}{_try_suffix(state)}"


def _try_suffix(state: RunState) -> str:
    return f".try{state.attempt}" if state.attempt > 1 else ""


def _send_step(state: RunState, position: int, now: datetime) -> tuple[RunState, list[Output]]:
    if position >= len(state.steps):
        return _finish(state, "succeeded", "every phase passed", now)
    step = state.steps[position]
    state = replace(state, attempt=1, retry_at=None)
    command_id = _step_command_id(state, position)
    compensations = state.compensations + ((Compensation(step.name, step.undo),) if step.undo else ())
    state = replace(
        state, position=position, in_flight=command_id, compensations=compensations,
        deadline=now + timedelta(seconds=step.work_s + state.plan.timeouts.step),
    )
    detail = _describe_step(step) if step.command else f"waiting for `golive approve {state.run_id} --stage {_stage_of(step)}`"
    started = EmitEvent(f"{state.run_id}/step/{position}", PhaseStarted(phase=step.phase, step=step.name, detail=detail))
    if step.command is None:
        return state, [started]
    return state, [started, SendCommand(command_id, step.command)]


def _stage_of(step: Step) -> int:
    return int(step.name.split(":")[0].removeprefix("stage"))


def _on_approval(state: RunState | None, approval: ApprovalGranted, now: datetime) -> tuple[RunState | None, list[Output]]:
    """An approval opens the gate the run waits at, if it names that stage (or none); otherwise nothing."""
    if state is None or state.finished or state.compensating or state.retry_at is not None:
        return state, []
    step = state.steps[state.position]
    if step.command is not None or approval.stage not in (None, _stage_of(step)):
        return state, []
    return _send_step(state, state.position + 1, now)


def _on_step_result(state: RunState, envelope: Envelope) -> tuple[RunState, list[Output]]:
    step = state.steps[state.position]
    data = envelope.data
    if isinstance(data, CommandFailed):
        if data.failure == "transient" and state.attempt < state.plan.retries.attempts:
            return _schedule_retry(state, f"{step.name} failed: {data.reason}", envelope.time)
        return _fail(state, f"{step.name} failed: {data.reason}", envelope.time, cause="service_failed")
    if isinstance(data, StepTimedOut):
        return _fail(state, _timeout_reason(state, data), envelope.time, cause="timeout")
    if isinstance(data, ProbeCompleted) and not data.passed:
        return _fail(state, f"{step.name} failed: {data.summary}", envelope.time, cause="threshold")
    if isinstance(data, TrafficDrift):
        reason = (f"{step.name} refused: {data.provider} sends {data.observed_weight}% to {data.canary}, "
                  f"golive set {data.expected_weight}% (traffic changed by hand)")
        return _fail(state, reason, envelope.time, cause="drift")
    if isinstance(data, TrafficShifted) and isinstance(step.command, ShiftTraffic) and data.verified_weight != step.command.weight:
        reason = f"{step.name} failed: {data.provider} reads back {data.verified_weight}%, expected {step.command.weight}%"
        return _fail(state, reason, envelope.time, cause="read_back")
    if isinstance(data, MigrationsApplied):
        state = replace(state, notes=state.notes + tuple(f"{r.name}: {r.action}" for r in data.results))
    return _send_step(state, state.position + 1, envelope.time)


def _on_tick(state: RunState | None, now: datetime) -> tuple[RunState | None, list[Output]]:
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
        due = RetryDue(step=_awaited_step(state), attempt=state.attempt + 1)
        return state, [EmitEvent(f"{state.run_id}/retrydue/{state.in_flight}", due, correlationid=state.in_flight)]
    if state is None or state.finished or state.deadline is None or state.in_flight is None or now < state.deadline:
        return state, []
    timed_out = StepTimedOut(step=_awaited_step(state), deadline=state.deadline)
    return state, [EmitEvent(f"{state.run_id}/timeout/{state.in_flight}", timed_out, correlationid=state.in_flight)]


def _awaited_step(state: RunState) -> str:
    if state.compensating and state.compensations:
        return f"undo:{state.compensations[-1].undoes}"
    return state.steps[state.position].name


def _schedule_retry(state: RunState, reason: str, now: datetime) -> tuple[RunState, list[Output]]:
    policy = state.plan.retries
    delay = min(policy.max_backoff, policy.backoff * 2 ** (state.attempt - 1))
    state = replace(state, retry_at=now + timedelta(seconds=delay), deadline=None)
    retrying = StepRetrying(step=_awaited_step(state), attempt=state.attempt, reason=reason, retry_at=state.retry_at)
    return state, [EmitEvent(f"{state.run_id}/retry/{state.in_flight}", retrying)]


def _resend(state: RunState, now: datetime) -> tuple[RunState, list[Output]]:
    """The next try of the awaited command, under a new id (the failed one was acked and deduplicated)."""
    work_s = 0.0 if state.compensating else state.steps[state.position].work_s
    state = replace(state, attempt=state.attempt + 1, retry_at=None)
    command = awaited_command(state)
    state = replace(state, in_flight=command.id, deadline=now + timedelta(seconds=work_s + state.plan.timeouts.step))
    return state, [command]


# --- failing and compensating ------------------------------------------------------------------


def _fail(state: RunState, reason: str, now: datetime, cause: str = "failed") -> tuple[RunState, list[Output]]:
    step = state.steps[state.position].name
    state = replace(state, failure=reason, failed_at=now, compensating=True, in_flight=None, deadline=None,
                    retry_at=None)
    outputs: list[Output] = [EmitEvent(f"{state.run_id}/failed", StepFailed(step=step, reason=reason, cause=cause))]
    state, more = _send_compensation(state, now)
    return state, outputs + more


def _send_compensation(state: RunState, now: datetime) -> tuple[RunState, list[Output]]:
    if not state.compensations:
        return _finish(state, "rolled_back", state.failure or "rolled back", now)
    comp = state.compensations[-1]
    index = len(state.compensations) - 1
    state = replace(state, attempt=1, retry_at=None)
    command_id = _compensation_command_id(state, index)
    state = replace(state, in_flight=command_id, deadline=now + timedelta(seconds=state.plan.timeouts.step))
    return state, [
        EmitEvent(f"{state.run_id}/undo/{index}", CompensationStarted(step=f"undo:{comp.undoes}", undoes=comp.undoes)),
        SendCommand(command_id, comp.command),
    ]


def _on_compensation_result(state: RunState, envelope: Envelope) -> tuple[RunState, list[Output]]:
    data = envelope.data
    undoing = state.compensations[-1].undoes
    retryable = isinstance(data, StepTimedOut) or (isinstance(data, CommandFailed) and data.failure != "invalid")
    if retryable and state.attempt < state.plan.retries.attempts:
        why = _timeout_reason(state, data) if isinstance(data, StepTimedOut) else f"undoing {undoing} failed: {data.reason}"
        return _schedule_retry(state, why, envelope.time)
    if isinstance(envelope.data, StepTimedOut):
        return _finish(state, "needs_human", f"{state.failure}; then {_timeout_reason(state, envelope.data)}", envelope.time)
    if isinstance(envelope.data, CommandFailed):
        reason = f"{state.failure}; then undoing {state.compensations[-1].undoes} failed: {envelope.data.reason}"
        return _finish(state, "needs_human", reason, envelope.time)
    state = replace(state, compensations=state.compensations[:-1])
    return _send_compensation(state, envelope.time)


# --- finishing ---------------------------------------------------------------------------------


def _finish(state: RunState, outcome: str, reason: str, now: datetime) -> tuple[RunState, list[Output]]:
    duration = (now - state.started_at).total_seconds()
    left = [c.undoes for c in reversed(state.compensations)] if outcome == "needs_human" else []
    state = replace(state, outcome=outcome, in_flight=None, deadline=None)
    outputs: list[Output] = [
        EmitEvent(f"{state.run_id}/finished", RunFinished(outcome=outcome, reason=reason, duration_s=duration, left_to_undo=left))
    ]
    return state, outputs


def _describe_step(step: Step) -> str:
    command = step.command
    if isinstance(command, ApplyMigrations):
        return f"{len(command.statements)} statement(s)"
    if isinstance(command, RunProbe):
        limits = ", ".join(f"{k} {v:g}" for k, v in command.thresholds.model_dump(exclude_none=True).items() if k != "min_samples")
        return f"{command.probe.name} for {command.duration_s:g}s ({limits or 'no thresholds'})"
    if isinstance(command, ShiftTraffic):
        return f"{command.weight}% to {command.canary}"
    return ""
