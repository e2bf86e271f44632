"""The deployment chart shows what was judged: each judged window and check with its verdict, each stage's limits over
its span, the run's phases as bands, axes scaled to what decides the run (services/coordinator/chart.py).

Runs told with the runbook's own plan (golive/plans/supabase-golive.yaml), shaped like `golive demo --bad-canary
latency` and `--bad-canary errors --from-stage 2`, and the recorded stream of real runs (tests/recorded/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import golive.shared.commands  # noqa: F401  (registers every message type, as a service does)
from golive.plans import RUNBOOK
from golive.services.coordinator.chart import ChartData, Reading, Series, chart_data
from golive.services.coordinator.chart_drawing import render_chart
from golive.shared.envelope import Envelope, parse_envelope
from golive.shared.events import (
    ApprovalGranted,
    CompensationStarted,
    Finding,
    LatencySummary,
    MigrationsApplied,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RunFinished,
    StageJudged,
    StepFailed,
    StepRef,
    TrafficRolledBack,
    TrafficShifted,
    Verdict,
    WindowJudged,
)
from golive.shared.plan import load_plan
from tests.builders import RunEvents

PNG = b"\x89PNG\r\n\x1a\n"
RECORDED = Path(__file__).parents[1] / "recorded" / "events-v1.jsonl"


class RunbookRun(RunEvents):
    """A run of the runbook's plan (dpl_new replacing dpl_old), told step by step at given seconds."""

    def __init__(self) -> None:
        super().__init__("run-chart", load_plan(RUNBOOK))
        self.started(0)

    def step(self, at: float, name: str, ref: StepRef) -> None:
        self.add(PhaseStarted(phase=ref.phase or "preflight", step=name, at=ref), at)

    def check(self, at: float, probe: str, label: str, p95: float, limits: dict[str, float], errors: int = 0,
              count: int = 400) -> None:
        """A preflight or smoke check's answer: its p95 and error rate against ``limits``."""
        observed = {"p95_ms": p95, "error_rate_pct": 100 * errors / (count + errors)}
        verdicts = [Verdict(metric=m, limit=v, observed=observed[m], passed=observed[m] <= v, samples=count + errors)
                    for m, v in limits.items()]
        passed = all(v.passed for v in verdicts)
        self.add(ProbeCompleted(probe=probe, label=label, count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95,
                                p99_ms=p95, max_ms=p95, duration_s=2, verdicts=verdicts, passed=passed,
                                verdict="pass" if passed else "fail", summary=probe), at)

    def before_the_canary(self) -> None:
        """Preflight (a check, the backup gate), the migrations and a smoke check, all passing: 19 s."""
        self.step(0.2, "preflight:check:app_health", StepRef(phase="preflight", kind="check", probe="app_health"))
        self.check(2.2, "app_health", "preflight", 3.3, {"error_rate_pct": 0})
        self.step(2.3, "preflight:gate:2", StepRef(phase="preflight", kind="gate"))
        self.add(ApprovalGranted(stage=None, approved_by="oncall"), 2.4)
        self.step(6.5, "migrate", StepRef(phase="migrate", kind="migrate"))
        self.add(MigrationsApplied(results=[]), 6.9)
        self.step(7.0, "smoke:stripe_upsert", StepRef(phase="smoke", kind="smoke", probe="stripe_upsert"))
        self.check(9.0, "stripe_upsert", "smoke", 4.2, {"p95_ms": 20, "error_rate_pct": 0})
        self.step(9.1, "smoke:api_smoke", StepRef(phase="smoke", kind="smoke", probe="api_smoke"))
        self.check(19.0, "api_smoke", "smoke", 23.5, {"error_rate_pct": 0})

    def shift(self, at: float, stage: int, weight: int) -> None:
        self.step(at, f"stage{stage}:shift:{weight}", StepRef(phase="canary", kind="shift", stage=stage))
        self.add(TrafficShifted(provider="envoy", canary="dpl_new", weight=weight, verified_weight=weight), at + 0.05)
        self.step(at + 0.1, f"stage{stage}:hold", StepRef(phase="canary", kind="hold", stage=stage))

    def window(self, at: float, stage: int, probe: str, index: int, verdict: Finding, p95: float, count: int = 40,
               errors: int = 0, judged: bool = True, guard: bool = False) -> None:
        """A probe window (what the prober measured) and the coordinator's verdict on it; an inconclusive one
        (too few requests) carries no numbers, as analysis.judge_window publishes it."""
        stats = LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95, max_ms=p95)
        self.add(ProbeWindow(command_id=f"hold{stage}", probe=probe, index=index, start_s=2.0 * index, seconds=2.0,
                             stats=stats), at)
        shown = judged and not guard and verdict != "inconclusive"
        self.add(WindowJudged(step=f"stage{stage}:hold", at=StepRef(phase="canary", kind="hold", stage=stage),
                              probe=probe, index=index, verdict=verdict, reason=f"{probe} window {index} {verdict}",
                              count=count + errors, p95_ms=p95 if shown else None,
                              error_rate_pct=round(100 * errors / (count + errors), 3) if shown else None,
                              guard=guard), at + 0.01)

    def roll_back(self, at: float, stage: int, weight: int, reason: str) -> list[Envelope]:
        hold = StepRef(phase="canary", kind="hold", stage=stage)
        self.add(StepFailed(step=f"stage{stage}:hold", at=hold, reason=reason, cause="analysis"), at)
        self.add(StageJudged(stage=stage, weight=weight, verdict="fail", reason=reason), at)
        self.add(CompensationStarted(step=f"undo:stage{stage}:shift:{weight}", undoes=f"stage{stage}:shift:{weight}",
                                     at=StepRef(phase="canary", kind="shift", stage=stage, undoing=True)), at)
        self.add(TrafficRolledBack(provider="envoy", canary="dpl_new", to="dpl_old", verified_weight=0), at + 0.04)
        self.add(RunFinished(outcome="rolled_back", reason=reason, duration_s=at + 0.04), at + 0.04)
        return self.events


def latency_run() -> list[Envelope]:
    """`golive demo --bad-canary latency`: at 10% the canary answers 600 ms late. production_api (the alias, split by
    weight) fails its windows at ~610 ms; app_health (the canary itself, 4 connections at 15 requests a second) gets
    too few answers per window to judge, and the prober's backlog shows as a p95 climbing from 1,290 to 4,660 ms;
    the guard's windows pass. Two failed windows in a row roll the run back; the hold's totals arrive afterwards,
    stopped."""
    run = RunbookRun()
    run.before_the_canary()
    run.shift(19.3, 1, 10)
    production = [("pass", 21.4), ("fail", 607.7), ("pass", 49.4), ("fail", 609.8), ("fail", 618.0)]
    for i, (verdict, p95) in enumerate(production):
        at = 21.5 + 2 * i
        run.window(at, 1, "app_health", i, "inconclusive", 1289.2 + 843 * i, count=11 + i)
        run.window(at, 1, "production_api", i, verdict, p95)  # type: ignore[arg-type]
        run.window(at, 1, "db_health", i, "pass", 26.5, count=20, guard=True)
    events = run.roll_back(29.6, 1, 10, "stage1:hold failed: production_api window 4 failed: p95 618 ms > 400 ms")
    stopped = ProbeCompleted(probe="app_health", label="stage 1 (10%)", count=64, errors=0, p50_ms=2000,
                             p95_ms=5685.2, p99_ms=5700, max_ms=5726, duration_s=10, passed=False, verdict="fail",
                             summary="app_health", verdicts=[Verdict(metric="p95_ms", limit=400, observed=5685.2,
                                                                     passed=False, samples=64)])
    run.add(ProbesCompleted(results=[stopped], passed=False, verdict="fail", summary="stopped", duration_s=10,
                            stopped="run run-chart is rolling back"), 29.9)
    return events + run.events[len(events):]


def errors_run() -> list[Envelope]:
    """`golive demo --bad-canary errors --from-stage 2`: stage 1 (10%) passes, at 50% every second answer of the
    canary is a 500: production_api's error rate (limit 1.5% at 50%, 1% at 10%) fails two windows in a row."""
    run = RunbookRun()
    run.before_the_canary()
    run.shift(19.3, 1, 10)
    for i in range(3):
        run.window(21.5 + 2 * i, 1, "app_health", i, "pass", 12.0, count=30)
        run.window(21.5 + 2 * i, 1, "production_api", i, "pass", 20.0)
    run.add(StageJudged(stage=1, weight=10, verdict="pass", reason="3 windows passed"), 26.0)
    run.shift(26.0, 2, 50)
    for i in range(2):
        run.window(28.1 + 2 * i, 2, "app_health", i, "fail", 12.0, count=15, errors=15)
        run.window(28.1 + 2 * i, 2, "production_api", i, "fail", 21.0, count=30, errors=10)
    return run.roll_back(30.2, 2, 50, "stage2:hold failed: production_api error rate 25% > 1.5%")


def recorded_run(run_id: str) -> list[Envelope]:
    lines = [json.loads(line) for line in RECORDED.read_text().splitlines()]
    return [parse_envelope(json.dumps(line["body"]).encode()) for line in lines if line["body"]["runid"] == run_id]


def series(data: ChartData, name: str) -> Series:
    found = {s.name: s for s in data.series}
    assert name in found, f"no series {name!r} in {sorted(found)}"
    return found[name]


# --- finding 2 of issue 15: each assert below failed on the chart before ---------------------------------------------


def test_the_latency_axis_is_scaled_to_the_judged_numbers_and_limits_not_to_inconclusive_outliers():
    data = chart_data(latency_run())
    low, high = data.p95_axis
    # the breach (618 ms against 400 ms) fills the panel; the backlog of an unjudged probe (1,289 -> 4,661 ms) does not
    assert low == 0 and 618 < high < 1000
    clipped = [(s.probe, p.p95_ms.value) for s, p in data.clipped()]
    assert [probe for probe, _ in clipped] == ["app_health"] * 5
    assert min(value for _, value in clipped) == pytest.approx(1289.2)


def test_the_error_rate_axis_starts_at_zero_in_percent_with_headroom_over_the_limit():
    low, high = chart_data(latency_run()).error_axis
    assert low == 0 and 1.0 < high <= 2.0  # the highest limit is production_api's 1% at 10%; nothing failed on errors
    low, high = chart_data(errors_run()).error_axis
    assert low == 0 and 50 < high <= 100  # app_health's 50% errors at 50% are in view


def test_each_stage_checks_its_own_limits_over_its_own_span():
    data = chart_data(errors_run())
    spans = {(t.probe, t.metric): [] for t in data.thresholds}
    for t in data.thresholds:
        if t.stage is not None:
            spans[(t.probe, t.metric)].append((t.stage, t.value, round(t.from_s, 1), round(t.to_s, 1)))
    # the plan: production_api errors < 1% at 10%, < 1.5% at 50% (until the rollback starts); app_health 0 both
    assert spans[("production_api", "error_rate_pct")] == [(1, 1.0, 19.3, 26.0), (2, 1.5, 26.0, 30.2)]
    assert spans[("app_health", "error_rate_pct")] == [(1, 0, 19.3, 26.0), (2, 0, 26.0, 30.2)]
    assert [v for _, v, _, _ in spans[("production_api", "p95_ms")]] == [400, 400]
    # a smoke check's limit is drawn over that check only
    smoke = [(t.value, t.from_s, t.to_s) for t in data.thresholds if t.probe == "stripe_upsert" and t.metric == "p95_ms"]
    assert smoke == [(20, 7.0, 9.0)]


def test_inconclusive_and_failed_windows_are_marked_as_such():
    data = chart_data(latency_run())
    app = series(data, "app_health (canary dpl_new)")
    assert [(p.kind, p.verdict) for p in app.points] == [("check", "pass")] + [("window", "inconclusive")] * 5
    # an inconclusive window shows what the prober measured, marked as not judged
    assert [round(p.p95_ms.value) for p in app.points if p.p95_ms] == [1289, 2132, 2975, 3818, 4661]
    assert {p.p95_ms.verdict for p in app.points if p.p95_ms} == {"inconclusive"}
    production = series(data, "production_api (production)")
    assert [(p.kind, p.verdict) for p in production.points] == [("window", v) for v in
                                                                 ("pass", "fail", "pass", "fail", "fail")]
    assert [p.p95_ms.verdict for p in production.points if p.p95_ms] == ["pass", "fail", "pass", "fail", "fail"]
    # nothing failed on errors: the error-rate readings of the failed windows are within their limit
    assert {p.error_rate_pct.verdict for p in production.points if p.error_rate_pct} == {"pass"}
    # the hold's totals, stopped by the rollback, were never judged: not drawn
    assert all(p.kind == "window" for s in data.series for p in s.points if p.stage == 1)


def test_each_probe_is_labelled_with_what_it_measures():
    data = chart_data(latency_run())
    assert {s.name for s in data.series} == {
        "app_health (canary dpl_new)",  # an http probe on the deployment's own url
        "production_api (production)",  # the alias, split between the deployments by weight
        "stripe_upsert (database)",  # a query
        "api_smoke (canary dpl_new)",
    }
    assert [s.name for s in data.guards] == ["db_health (database guard)"]
    assert [p.verdict for p in data.guards[0].points] == ["pass"] * 5
    recorded = chart_data(recorded_run("run-rec-rollback"))
    assert {s.name for s in recorded.series} == {"stripe_recent (database)", "slow_query (database)"}


def test_the_phases_are_bands_from_the_first_step_to_the_end_of_the_rollback():
    data = chart_data(latency_run())
    bands = [(b.label, round(b.from_s, 1), round(b.to_s, 1), b.verdict) for b in data.phases]
    assert bands == [("preflight", 0.2, 6.5, "pass"), ("migrate", 6.5, 7.0, "pass"), ("smoke", 7.0, 19.3, "pass"),
                     ("stage 1 · 10%", 19.3, 29.6, "fail"), ("rollback", 29.6, 29.6, None)]
    assert data.rollback_s == pytest.approx(29.6) and data.outcome == "rolled_back"
    assert data.reason.startswith("stage 1 (10%) failed: production_api p95 618 ms > 400 ms")  # the story's words
    passed = chart_data(errors_run())
    assert [(b.label, b.verdict) for b in passed.phases][3:] == [("stage 1 · 10%", "pass"), ("stage 2 · 50%", "fail"),
                                                                 ("rollback", None)]


# --- runs as the stream holds them ---------------------------------------------------------------------------------


def test_a_recorded_rollback_shows_its_judged_windows_in_its_stages():
    data = chart_data(recorded_run("run-rec-rollback"))
    assert [b.label for b in data.phases] == ["migrate", "smoke", "stage 1 · 10%", "stage 2 · 50%", "rollback"]
    slow = series(data, "slow_query (database)")
    assert [(p.stage, p.verdict) for p in slow.points] == [(2, "fail"), (2, "fail")]
    # each stage's own checks over its span; stage 3 never started
    assert [(t.probe, t.metric, t.stage, t.value) for t in data.thresholds if t.stage is not None] == [
        ("stripe_recent", "p95_ms", 1, 400), ("stripe_recent", "error_rate_pct", 1, 1.0), ("slow_query", "p95_ms", 2, 20)]


def test_a_run_whose_stages_judge_no_windows_is_drawn_from_its_check_results():
    data = chart_data(recorded_run("run-rec-ok"))
    recent = series(data, "stripe_recent (database)")
    assert [(p.kind, p.stage) for p in recent.points] == [("check", None), ("check", 1), ("check", 2), ("check", 3)]
    assert all(p.verdict == "pass" and p.from_s < p.at_s for p in recent.points)
    assert data.outcome == "succeeded" and data.rollback_s is None
    assert [b.label for b in data.phases] == ["migrate", "smoke", "stage 1 · 10%", "stage 2 · 50%", "stage 3 · 100%"]


def test_the_chart_is_a_png_for_a_rollback_and_for_a_run_with_nothing_measured():
    assert render_chart(chart_data(latency_run())).startswith(PNG)
    nothing = RunbookRun()
    nothing.add(RunFinished(outcome="rolled_back", reason="aborted", duration_s=1), 1)
    data = chart_data(nothing.events)
    assert data.empty and data.phases == ()
    assert render_chart(data).startswith(PNG)


def test_a_run_that_goes_live_shows_every_phase_passed_to_the_lock_in():
    run = RunbookRun()
    run.before_the_canary()
    for stage, weight, at in ((1, 10, 19.3), (2, 50, 26.0), (3, 100, 30.0)):
        run.shift(at, stage, weight)
        run.window(at + 2.1, stage, "production_api", 0, "pass", 20.0)
        run.add(StageJudged(stage=stage, weight=weight, verdict="pass", reason="1 window passed"), at + 3.5)
    run.step(34.0, "final_validation", StepRef(phase="final_validation", kind="validate"))
    run.check(40.0, "production_api", "final validation", 22.0, {"p95_ms": 400, "error_rate_pct": 1.0})
    run.step(40.1, "lock_in:promote", StepRef(phase="lock_in", kind="promote"))
    run.add(RunFinished(outcome="succeeded", reason="every phase passed", duration_s=41), 41.0)
    data = chart_data(run.events)
    assert [(b.label, b.verdict) for b in data.phases] == [
        ("preflight", "pass"), ("migrate", "pass"), ("smoke", "pass"), ("stage 1 · 10%", "pass"),
        ("stage 2 · 50%", "pass"), ("stage 3 · 100%", "pass"), ("final validation", "pass"), ("lock-in", "pass")]
    assert data.failed_s is None and data.rollback_s is None and data.outcome == "succeeded"
    final = [(t.metric, t.value, t.from_s, t.to_s) for t in data.thresholds if t.stage is None
             and t.probe == "production_api"]
    assert final == [("p95_ms", 400, 34.0, 40.0), ("error_rate_pct", 1.0, 34.0, 40.0)]
    # nothing failed or went unjudged: the axis ends a quarter above the highest limit
    assert data.p95_axis == (0, 500) and not data.clipped()


def test_a_failed_preflight_has_nothing_to_roll_back():
    run = RunbookRun()
    run.step(0.2, "preflight:check:app_health", StepRef(phase="preflight", kind="check", probe="app_health"))
    run.check(2.2, "app_health", "preflight", 3.3, {"error_rate_pct": 0}, errors=40)
    run.add(StepFailed(step="preflight:check:app_health", reason="app_health: error rate 9.09% > 0%",
                       at=StepRef(phase="preflight", kind="check", probe="app_health")), 2.3)
    run.add(RunFinished(outcome="rolled_back", reason="app_health: error rate 9.09% > 0%", duration_s=2.4), 2.4)
    data = chart_data(run.events)
    assert [(b.label, b.to_s, b.verdict) for b in data.phases] == [("preflight", 2.3, "fail")]
    assert data.failed_s == 2.3 and data.rollback_s is None
    [app] = data.series
    assert [(p.kind, p.verdict, p.error_rate_pct) for p in app.points] == [
        ("check", "fail", Reading(100 * 40 / 440, "fail"))]
