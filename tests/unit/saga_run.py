"""One run driven through the saga's pure decide(), as the coordinator's shell would: a small plan, the answers
the services give, the operator's requests, and filters over what decide() said. Shared by the saga's tests
(test_saga_decide.py, test_saga_analysis.py, test_saga_traffic_target.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from golive.services.coordinator.saga import EmitEvent, Output, RunState, SendCommand, Tick, decide
from golive.shared.commands import (
    ApplyMigrations,
    PromoteTraffic,
    RevertMigrations,
    RollbackTraffic,
    RunProbe,
    RunProbes,
    ShiftTraffic,
    TakeTrafficTarget,
    command_target,
)
from golive.shared.envelope import Envelope, Message, new_envelope
from golive.shared.events import (
    CommandFailed,
    IndexResult,
    LatencySummary,
    MigrationsApplied,
    MigrationsReverted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RetryDue,
    RunFinished,
    StepTimedOut,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
    Verdict,
)
from golive.shared.plan import Plan, parse_plan
from tests.builders import RunEvents

T0 = datetime(2025, 1, 5, 2, 0, tzinfo=UTC)
STEP_TIMEOUT = timedelta(seconds=60)

PLAN_YAML = """
name: checkout
database:
  url_env: DB_URL
notifications:
  slack:
    webhook_url_env: SLACK_URL
  maintenance_window: Sun 02:00-04:00 UTC
migrations:
  statements:
    - name: events_created
      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)
probes:
  recent:
    query: SELECT id FROM events ORDER BY created_at DESC LIMIT 10
smoke:
  - probe: recent
    duration: 5s
    thresholds: {p95_ms: 20}
canary:
  stages:
    - weight: 10
      hold: 30s
      checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}]
    - weight: 100
      hold: 60s
      checks: [{probe: recent, duration: 10s}]
rollback:
  drop_indexes: true
timeouts:
  step: 60s
retries:
  attempts: 1  # one try unless a test says otherwise
"""


def replaced(yaml_text: str, **replacements: str) -> str:
    """``yaml_text`` with each ``old=new`` made; an ``old`` that is not in it fails the test (a stale edit would
    otherwise leave the plan unchanged and the test proving nothing)."""
    for old, new in replacements.items():
        assert old in yaml_text, f"{old!r} is not in the plan text"
        yaml_text = yaml_text.replace(old, new)
    return yaml_text


def plan_from(yaml_text: str = PLAN_YAML, **replacements: str) -> Plan:
    return parse_plan(replaced(yaml_text, **replacements))


# --- what the services answer -------------------------------------------------------------------


def success_answer(command: Message) -> Message:
    """The event a service publishes when ``command`` worked."""
    if isinstance(command, ApplyMigrations):
        return MigrationsApplied(results=[
            IndexResult(name=s.name, index=f"idx_{s.name}", action="built", seconds=1.5) for s in command.statements
        ])
    if isinstance(command, RunProbe):
        return probe_result(command.probe.name, passed=True, summary="p95 3.10 <= 400 over 300 requests",
                            label=command.label)
    if isinstance(command, RunProbes):
        return hold_result(passed=True, probes=[p.probe.name for p in command.probes], label=command.label)
    if isinstance(command, PromoteTraffic):
        return TrafficPromoted(provider=command.provider.type, canary=command.canary, verified_weight=100)
    if isinstance(command, ShiftTraffic):
        return TrafficShifted(provider=command.provider.type, canary=command.canary, weight=command.weight,
                              verified_weight=command.weight)
    if isinstance(command, RollbackTraffic):
        return TrafficRolledBack(provider=command.provider.type, canary=command.canary, to=command.to, verified_weight=0)
    if isinstance(command, RevertMigrations):
        return MigrationsReverted(dropped=[f"idx_{s.name}" for s in command.statements])
    if isinstance(command, TakeTrafficTarget):
        return TrafficTargetTaken(provider=command.provider.type, canary=command.canary, target="dry-run t", weight=0)
    raise AssertionError(f"no success answer for {type(command).__name__}")


def probe_result(probe: str, *, passed: bool, summary: str, label: str = "") -> ProbeCompleted:
    p95 = 3.1 if passed else 512.0
    return ProbeCompleted(
        probe=probe, label=label, count=300, errors=0, p50_ms=1.2, p95_ms=p95, p99_ms=p95 + 1, max_ms=p95 + 2, duration_s=30.0,
        verdicts=[Verdict(metric="p95_ms", limit=400.0, observed=p95, passed=passed)], passed=passed, summary=summary,
    )


def hold_result(*, passed: bool, probes: list[str] = ["recent"], label: str = "") -> ProbesCompleted:
    """The answer to a stage hold: every probe's result (only the first fails when not ``passed``)."""
    summary = "p95 3.10 <= 400 over 300 requests" if passed else "p95 512.00 > 400 over 300 requests"
    results = [probe_result(p, passed=passed or i > 0, summary=summary, label=label) for i, p in enumerate(probes)]
    return ProbesCompleted(results=results, passed=passed, summary=f"{probes[0]}: {summary}", duration_s=30.0)


def failure(reason: str) -> CommandFailed:
    return CommandFailed(service="traffic", command_type="golive.cmd.traffic.shift.v1", reason=reason)


# --- a run driven through decide() --------------------------------------------------------------


@dataclass
class Run:
    """One run fed through decide(), recording every input and output, with a clock the test moves."""

    run_id: str = "run-1"
    plan: Plan = field(default_factory=plan_from)
    state: RunState | None = None
    clock: datetime = T0
    inputs: list = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    commands: dict[str, Message] = field(default_factory=dict)
    # the run's events as the stream holds them: each input event, then the events decide() emitted for it
    stream: list[Envelope] = field(default_factory=list)

    def feed(self, item) -> list[Output]:
        self.inputs.append(item)
        if isinstance(item, Envelope) and all(item.id != e.id for e in self.stream[-5:]):
            self.stream.append(item)  # a timeout the saga emitted comes back as its input: once in the stream
        self.state, outputs = decide(self.state, item)
        self.outputs += outputs
        self.commands.update({o.id: o.data for o in outputs if isinstance(o, SendCommand)})
        cause = item.correlationid if isinstance(item, Envelope) else None
        self.stream += [new_envelope(o.data, id=o.id, source="/golive/coordinator", runid=self.run_id, time=self.clock,
                                     correlationid=o.correlationid or cause) for o in outputs if isinstance(o, EmitEvent)]
        return outputs

    def start(self, take: bool = True, **fields) -> list[Output]:
        """Start the run (deploy-new replacing deploy-old, unless ``fields`` of run_started say otherwise); with
        ``take``, the traffic service holds its target at once (canary at 0%), and what follows is returned
        (tests/unit/test_saga_traffic_target.py drives the take itself)."""
        fields = {"deploy_id": "deploy-new", "previous_deploy_id": "deploy-old", "takes_traffic_target": True, **fields}
        started = RunEvents(self.run_id, self.plan, start=self.clock).started(0, **fields)
        outputs = self.feed(started)
        if take and self.state is not None and isinstance(self.commands.get(self.state.in_flight), TakeTrafficTarget):
            return self.answer(success_answer(self.awaited), after=timedelta(0))
        return outputs

    def answer(self, data: Message, *, correlationid: str | None = None, after: timedelta = timedelta(seconds=1)) -> list[Output]:
        """An event answering the awaited command (or ``correlationid``), ``after`` the previous input."""
        self.clock += after
        envelope = new_envelope(
            data, id=f"{self.run_id}/answer/{len(self.inputs)}", source="golive.test", runid=self.run_id,
            correlationid=correlationid or self.state.in_flight, time=self.clock,
        )
        return self.feed(envelope)

    def tick(self, at: datetime) -> list[Output]:
        """The clock passes ``at``; a timeout or retry-due event it yields comes back as the shell's consumer brings it.
        Returns what folding that event decided (the tick itself only reports the timeout)."""
        self.clock = at
        said = self.feed(Tick(at))
        outputs: list[Output] = []
        for out in said:
            assert isinstance(out, EmitEvent) and isinstance(out.data, (StepTimedOut, RetryDue)), said
            outputs += self.feed(new_envelope(out.data, id=out.id, source="/golive/coordinator", runid=self.run_id,
                                              correlationid=out.correlationid, time=at))
        return outputs

    @property
    def awaited(self) -> Message:
        return self.commands[self.state.in_flight]

    @property
    def current_step(self) -> str:
        return self.state.steps[self.state.position].name

    def window(self, index: int, *, probe: str = "recent", p95: float = 120.0, count: int = 1_200, errors: int = 0,
               **gauges: float) -> list[Output]:
        """A window of the hold in flight as the prober publishes it (no correlationid, the hold's id inside), 30 s
        after the previous input."""
        self.clock += timedelta(seconds=30)
        stats = LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95, max_ms=p95,
                               gauges=gauges)
        hold = self.commands[self.state.in_flight]
        label = hold.label if isinstance(hold, RunProbes) else ""
        data = ProbeWindow(command_id=self.state.in_flight, probe=probe, index=index, start_s=index * 30.0,
                           seconds=30.0, stats=stats, label=label)
        return self.feed(new_envelope(data, id=f"{data.command_id}/window/{probe}/probe/{index}",
                                      source="/golive/prober", runid=self.run_id, time=self.clock))

    def operator(self, data: Message) -> list[Output]:
        """An operator's request (approve, pause, continue, abort, retry) as the coordinator records it, 1 s later."""
        self.clock += timedelta(seconds=1)
        return self.feed(new_envelope(data, id=f"{self.run_id}/operator/{len(self.inputs)}", source="/golive/coordinator",
                                      runid=self.run_id, time=self.clock))

    def succeed(self) -> list[Output]:
        return self.answer(success_answer(self.awaited))

    def advance_to(self, step: str) -> None:
        """Answer every step with success until ``step`` is the one in flight."""
        while self.current_step != step:
            self.succeed()


def started_run(**kwargs) -> Run:
    run = Run(**kwargs)
    run.start()
    return run


def events(outputs: list[Output]) -> list[Message]:
    return [o.data for o in outputs if isinstance(o, EmitEvent)]


def commands(outputs: list[Output]) -> list[Message]:
    return [o.data for o in outputs if isinstance(o, SendCommand)]


WORKERS = {"migrator", "prober", "traffic"}  # the services the saga sends work to; the notifier reads events itself


def stray_commands(outputs: list[Output]) -> list[Message]:
    """Commands the saga sent to anything but a work service (the notifier, itself): there must be none."""
    return [c for c in commands(outputs) if command_target(type(c))[0] not in WORKERS]


def work_commands(outputs: list[Output]) -> list[Message]:
    return [c for c in commands(outputs) if command_target(type(c))[0] in WORKERS]


def finished(outputs: list[Output]) -> RunFinished:
    (result,) = [e for e in events(outputs) if isinstance(e, RunFinished)]
    return result


# --- what the operator asks ---------------------------------------------------------------------


def abort(run, reason="error budget burning", by="maksim"):
    from golive.shared.events import AbortRequested

    run.clock += timedelta(seconds=1)
    return run.feed(new_envelope(AbortRequested(reason=reason, requested_by=by), id=f"{run.run_id}/abort/{len(run.inputs)}",
                                 source="/golive/coordinator", runid=run.run_id, correlationid="run-1.abort.x",
                                 time=run.clock))


def approve(run, stage=None, by="maksim"):
    from golive.shared.events import ApprovalGranted

    run.clock += timedelta(seconds=1)
    return run.feed(new_envelope(ApprovalGranted(stage=stage, approved_by=by), id=f"{run.run_id}/approve/{len(run.inputs)}",
                                 source="/golive/coordinator", runid=run.run_id, time=run.clock))
