"""Synthetic runs for the report tests: the events a real run publishes, built with new_envelope."""

from __future__ import annotations

from datetime import UTC, datetime

from golive.shared.envelope import Envelope
from golive.shared.events import (
    CompensationStarted,
    LatencySummary,
    PhaseStarted,
    ProbeCompleted,
    ProbeWindow,
    RunFinished,
    StepFailed,
    TrafficRolledBack,
    TrafficShifted,
    Verdict,
)
from tests.builders import RunEvents, checkout_plan

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)

PLAN = checkout_plan("""
canary:
  stages:
    - {weight: 10, hold: 60s, checks: [{probe: recent, window: 10s, thresholds: {p95_ms: 400, error_rate_pct: 1}}]}
    - {weight: 50, hold: 60s, checks: [{probe: recent, window: 10s, thresholds: {p95_ms: 300, error_rate_pct: 1.5}}]}
    - {weight: 100, hold: 60s, checks: [{probe: recent, window: 10s, thresholds: {p95_ms: 300, error_rate_pct: 1}}]}
""")

# a run whose go-live is followed by a week of post-deploy checks (the watch's tests)
WATCHED_PLAN = checkout_plan("""
canary:
  stages: [{weight: 100, hold: 60s}]
timeouts: {step: 60s}
post_deploy:
  period: 7d
  health_every: 1h
  summary_every: 1d
  checks: [{probe: recent, duration: 30s, thresholds: {p95_ms: 50}}]
""")


class RunBuilder(RunEvents):
    """Events of one run, each ``at`` seconds after ``start``, told the way the report tests tell it: shifts, probe
    windows against a baseline, hold results, a rollback."""

    def __init__(self, run_id: str = "run-1", start: datetime = T0, plan=PLAN, deploy_id: str = "dpl_new") -> None:
        super().__init__(run_id, plan, start=start)
        self.started(0, deploy_id=deploy_id)

    def shift(self, at: float, stage: int, weight: int) -> None:
        self.add(PhaseStarted(phase="canary", step=f"stage{stage}:shift:{weight}"), at)
        self.add(TrafficShifted(provider="dry-run", canary="dpl_new", weight=weight, verified_weight=weight), at)

    def window(self, at: float, index: int, p95: float, errors: int = 0, count: int = 100,
               target: str = "probe", probe: str = "recent") -> None:
        stats = LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95 * 1.2,
                               max_ms=p95 * 1.5)
        self.add(ProbeWindow(command_id="cmd", probe=probe, target=target, index=index, start_s=at - 10,
                                 seconds=10, stats=stats), at)

    def result(self, at: float, p95: float, passed: bool = True, label: str = "stage 1 (10%)",
               probe: str = "recent", errors: int = 0, count: int = 600) -> None:
        self.add(ProbeCompleted(
            probe=probe, label=label, count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95 * 1.2,
            max_ms=p95 * 2, duration_s=60, passed=passed, summary=f"{probe} p95 {p95} ms",
            verdicts=[Verdict(metric="p95_ms", limit=400, observed=p95, passed=passed, samples=count + errors)]), at)

    def rollback(self, at: float, step: str = "stage2:hold", reason: str = "p95 512 ms > 300 ms",
                 cause: str = "threshold") -> None:
        self.add(StepFailed(step=step, reason=reason, cause=cause), at)
        self.add(CompensationStarted(step="undo:stage2:shift:50", undoes="stage2:shift:50"), at)
        self.add(TrafficRolledBack(provider="dry-run", canary="dpl_new", to="dpl_old", verified_weight=0), at + 1)

    def finish(self, at: float, outcome: str = "succeeded", reason: str = "all stages passed") -> list[Envelope]:
        self.add(RunFinished(outcome=outcome, reason=reason, duration_s=at), at)
        return self.events


def rolled_back_run(run_id: str = "run-rb", start: datetime = T0) -> list[Envelope]:
    """Stage 1 passes; in stage 2 the canary's p95 climbs past 300 ms and the run rolls back."""
    run = RunBuilder(run_id, start)
    run.shift(5, 1, 10)
    for i in range(6):
        run.window(15 + 10 * i, i, 40 + i)
        run.window(15 + 10 * i, i, 38, target="baseline")
    run.result(65, 45)
    run.shift(66, 2, 50)
    for i in range(4):
        run.window(76 + 10 * i, i, 120 + 150 * i, errors=i)
        run.window(76 + 10 * i, i, 39, target="baseline")
    run.rollback(110)
    return run.finish(115, "rolled_back", "stage2:hold failed: p95 570 ms > 300 ms")
