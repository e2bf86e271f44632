"""Properties of decide() over random runs: answers that succeed, fail, fail transiently, come twice, come
late or for another command; ticks of any length; aborts and approvals at any moment.

Stage holds also get probe windows (passing, failing, guard breaches, for the hold in flight or an old
command) and hold results that pass or fail on their totals.

Whatever happens: the run ends in a terminal state once the services answer; no traffic moves forward
after the rollback began; every step that may have happened is compensated exactly once; a gate opens
only after its approval; probes are stopped only for a hold that was sent, once, as the rollback begins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from golive.services.coordinator.saga import EmitEvent, RunState, SendCommand, StopProbes, Tick, decide
from golive.shared.commands import (
    ApplyMigrations,
    PromoteTraffic,
    RunProbe,
    RunProbes,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.envelope import Message, new_envelope
from golive.shared.events import (
    AbortRequested,
    ApprovalGranted,
    CommandFailed,
    CompensationStarted,
    LatencySummary,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RetryDue,
    RunStarted,
    StepFailed,
    StepTimedOut,
    Verdict,
    WindowClosing,
)
from golive.shared.plan import parse_plan
from tests.unit.saga_run import success_answer  # the services' answers, as the saga's other tests give them

PLAN_TEXT = """
name: props
database: {url_env: DB}
migrations:
  statements:
    - {name: idx, sql: CREATE INDEX CONCURRENTLY idx_a ON t(a)}
preflight:
  - {probe: q, duration: 1s}
probes:
  q: {query: SELECT 1}
  db: {kind: pg_health}
smoke:
  - {probe: q, duration: 5s, thresholds: {p95_ms: 20}}
canary:
  stages:
    - {weight: 10, hold: 30s, checks: [{probe: q, thresholds: {p95_ms: 400}}]}
    - {weight: 50, hold: 30s, approval: true, checks: [{probe: q, thresholds: {p95_ms: 400}}]}
    - {weight: 100, hold: 30s, checks: [{probe: q, thresholds: {p95_ms: 400}}]}
analysis: {interval: 10s, min_samples: 5, failure_limit: 3, consecutive_failure_limit: 2}
guards: {probe: db, replica_lag_s: 8}
final_validation: [{probe: q, duration: 5s}]
lock_in: {promote: true}
rollback: {drop_indexes: true}
timeouts: {step: 60s, approval: 10m}
retries: {attempts: 3, backoff: 2s}
window: {rollback: 10m}
"""
PLAN = parse_plan(PLAN_TEXT)
# the same with a manual preflight gate first ("Confirm backup completion"): few random runs get past it,
# so it is a plan of its own rather than the only one
GATED = parse_plan(PLAN_TEXT.replace("preflight:\n", "preflight:\n  - {gate: Confirm backup completion}\n"))
T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def probe(passed: bool) -> ProbeCompleted:
    p95 = 3.0 if passed else 900.0
    return ProbeCompleted(probe="q", count=100, errors=0, p50_ms=1, p95_ms=p95, p99_ms=p95, max_ms=p95, duration_s=5,
                          verdicts=[Verdict(metric="p95_ms", limit=400, observed=p95, passed=passed)], passed=passed,
                          summary="s")


def hold(passed: bool) -> ProbesCompleted:
    return ProbesCompleted(results=[probe(passed)], passed=passed, summary="s", duration_s=30)


def window(command_id: str, probe_name: str, index: int, breach: bool) -> ProbeWindow:
    gauges = {"replica_lag_s": 20.0 if breach else 1.0} if probe_name == "db" else {}
    p95 = 900.0 if breach else 3.0
    stats = LatencySummary(count=50, errors=0, p50_ms=1, p95_ms=p95, p99_ms=p95, max_ms=p95, gauges=gauges)
    return ProbeWindow(command_id=command_id, probe=probe_name, index=index, start_s=index * 10.0, seconds=10, stats=stats)


def failed(kind: str) -> CommandFailed:
    return CommandFailed(service="s", command_type="t", reason="boom", failure=kind)


@dataclass
class World:
    """decide() with the shell's loop: events it emits come back as inputs; the clock is ours."""

    state: RunState | None = None
    clock: datetime = T0
    sent: list[SendCommand] = field(default_factory=list)
    emitted: list[EmitEvent] = field(default_factory=list)
    delivered: list = field(default_factory=list)
    approvals: list[int | None] = field(default_factory=list)
    log: list[tuple[str, object]] = field(default_factory=list)  # ("sent"/"approved"/"rollback_began"/"stopped", ...)
    n: int = 0

    def feed(self, data: Message, correlation: str | None) -> None:
        self.n += 1
        envelope = new_envelope(data, id=f"e{self.n}", source="/t", runid="run-p", correlationid=correlation, time=self.clock)
        self.delivered.append(envelope)
        self._apply(envelope)

    def _apply(self, item) -> None:
        self.state, outputs = decide(self.state, item)
        for out in outputs:
            if isinstance(out, SendCommand):
                self.sent.append(out)
                self.log.append(("sent", out.data))
            elif isinstance(out, StopProbes):
                self.log.append(("stopped", out.command_id))
            else:
                self.emitted.append(out)
                if isinstance(out.data, StepFailed):
                    self.log.append(("rollback_began", None))
                if isinstance(out.data, (StepTimedOut, RetryDue, WindowClosing)):  # the shell's loop
                    self.n += 1
                    back = new_envelope(out.data, id=out.id, source="/golive/coordinator", runid="run-p",
                                        correlationid=out.correlationid, time=self.clock)
                    self.delivered.append(back)
                    self._apply(back)

    def tick(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)
        self._apply(Tick(self.clock))

    def awaited(self) -> SendCommand | None:
        if self.state is None or self.state.in_flight is None:
            return None
        return next((s for s in reversed(self.sent) if s.id == self.state.in_flight), None)


ACTIONS = st.sampled_from([
    "succeed", "succeed", "succeed", "succeed", "fail_probe", "fail_fatal", "fail_transient", "duplicate",
    "stale", "tick_short", "tick_long", "abort", "approve_right", "approve_wrong", "approve_any",
    "to_hold", "window_pass", "window_pass", "window_fail", "window_fail", "guard_breach", "stale_window",
])


def act(world: World, action: str, pick: int) -> None:
    awaited = world.awaited()
    if action == "succeed" and awaited:
        world.feed(success_answer(awaited.data), awaited.id)
    elif action == "fail_probe" and awaited and isinstance(awaited.data, RunProbe):
        world.feed(probe(False), awaited.id)
    elif action == "fail_probe" and awaited and isinstance(awaited.data, RunProbes):
        world.feed(hold(False), awaited.id)
    elif action == "to_hold":  # the services answer until a stage hold (or a gate, or the end) is reached
        while awaited and not isinstance(awaited.data, RunProbes) and world.state.retry_at is None:
            world.feed(success_answer(awaited.data), awaited.id)
            awaited = world.awaited()
    elif action in ("window_pass", "window_fail", "guard_breach") and awaited and isinstance(awaited.data, RunProbes):
        checks = [p.probe.name for p in awaited.data.probes if p.probe.name != "db"]  # db: the guard
        name = "db" if action == "guard_breach" or not checks else checks[pick % len(checks)]
        world.feed(window(awaited.id, name, pick % 4, breach=action != "window_pass"), None)
    elif action == "stale_window" and world.sent:
        world.feed(window(world.sent[pick % len(world.sent)].id, "q", pick % 4, breach=True), None)
    elif action == "fail_fatal" and awaited:
        world.feed(failed("fatal"), awaited.id)
    elif action == "fail_transient" and awaited:
        world.feed(failed("transient"), awaited.id)
    elif action == "duplicate" and world.delivered:
        world.n += 1
        world._apply(world.delivered[pick % len(world.delivered)])
    elif action == "stale" and world.sent:
        old = world.sent[pick % len(world.sent)]
        world.feed(success_answer(old.data) if not isinstance(old.data, type(None)) else failed("fatal"), old.id)
    elif action == "tick_short":
        world.tick(1 + pick % 5)
    elif action == "tick_long":
        world.tick(30 + pick % 900)
    elif action == "abort":
        world.feed(AbortRequested(reason="r", requested_by="u"), "abort")
    elif action in ("approve_right", "approve_wrong", "approve_any"):
        stage = {"approve_right": 2, "approve_wrong": 3, "approve_any": None}[action]
        world.approvals.append(stage)
        world.log.append(("approved", stage))
        world.feed(ApprovalGranted(stage=stage, approved_by="u"), "approve")


def drain(world: World) -> None:
    """Services answer everything with success from now on; time passes; nobody approves."""
    for _ in range(200):
        if world.state.finished:
            return
        awaited = world.awaited()
        if awaited and world.state.retry_at is None:
            world.feed(success_answer(awaited.data), awaited.id)
        else:
            world.tick(120)
    raise AssertionError(f"run did not end: {world.state}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(ACTIONS, st.integers(0, 10_000)), min_size=5, max_size=40), st.booleans())
def test_any_run_ends_and_keeps_its_promises(actions, preflight_gate):
    world = World()
    plan = GATED if preflight_gate else PLAN
    started = RunStarted(plan=plan.model_dump(mode="json"), plan_version=plan.version, plan_name="props", deploy_id="new",
                         previous_deploy_id="old", takes_traffic_target=True)
    world.feed(started, None)
    for action, pick in actions:
        if world.state.finished:
            break
        act(world, action, pick)
    drain(world)

    state = world.state
    assert state.outcome in {"succeeded", "rolled_back", "needs_human"}

    # no traffic moves forward once the rollback began
    began = next((i for i, (kind, _) in enumerate(world.log) if kind == "rollback_began"), None)
    if began is not None:
        later = [d for kind, d in world.log[began:] if kind == "sent" and isinstance(d, ShiftTraffic | PromoteTraffic)]
        assert later == []

    # probes are stopped once at most, only for a probe command that was sent, and only as the rollback begins
    stopped = [(i, d) for i, (kind, d) in enumerate(world.log) if kind == "stopped"]
    assert len(stopped) <= 1
    for i, command_id in stopped:
        assert command_id in {s.id for s in world.sent if isinstance(s.data, RunProbe | RunProbes)}
        assert world.log[i - 1][0] == "rollback_began"

    # every compensation runs once (retries re-send it; they do not start it again)
    undone = [e.data.undoes for e in world.emitted if isinstance(e.data, CompensationStarted)]
    assert len(undone) == len(set(undone))
    shifted = any(isinstance(s.data, ShiftTraffic) for s in world.sent)
    migrated = any(isinstance(s.data, ApplyMigrations) for s in world.sent)
    if state.outcome == "rolled_back":
        assert ("stage1:shift:10" in undone) == shifted
        assert ("migrate" in undone) == migrated
    if state.outcome == "succeeded":
        assert undone == []

    # the gate of stage 2 opens only after an approval of stage 2 (or of whichever gate waits), and the
    # preflight gate only after an approval naming no stage
    first_50 = next((i for i, (kind, d) in enumerate(world.log)
                     if kind == "sent" and isinstance(d, ShiftTraffic) and d.weight == 50), None)
    if first_50 is not None:
        assert ("approved", 2) in world.log[:first_50] or ("approved", None) in world.log[:first_50]
    # the traffic target is taken before anything else is sent; the preflight gate holds back everything after
    assert isinstance(world.sent[0].data, TakeTrafficTarget)
    first_sent = next((i for i, (kind, d) in enumerate(world.log)
                       if kind == "sent" and not isinstance(d, TakeTrafficTarget)), None)
    if preflight_gate and first_sent is not None:
        assert ("approved", None) in world.log[:first_sent]
    event(f"outcome {state.outcome}; cause {next((e.data.cause for e in world.emitted if isinstance(e.data, StepFailed)), '-')}")
