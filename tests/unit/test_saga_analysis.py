"""decide() for the runbook's later rules: preflight checks and gates, stage holds as one RunProbes with
per-window analysis and guards, baseline comparison, final validation and lock-in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from golive.services.coordinator.control import operator_refusal
from golive.services.coordinator.saga import StopProbes, decide
from golive.shared.commands import (
    ApplyMigrations,
    ApproveGate,
    HttpProbeSpec,
    PgHealthProbeSpec,
    PromoteTraffic,
    RollbackTraffic,
    RunProbe,
    RunProbes,
    ShiftTraffic,
)
from golive.shared.events import (
    PhaseStarted,
    StepFailed,
    TrafficPromoted,
    TrafficRolledBack,
)
from golive.shared.step_ref import StepRef, ref_of_name
from tests.unit.runbook_hold import PLAN, at_hold, judged, runbook_run, stops, through_the_gate, window_of
from tests.unit.saga_run import (
    Run,
    abort,
    approve,
    commands,
    events,
    failure,
    finished,
    hold_result,
    plan_from,
    probe_result,
    work_commands,
)

ORDER = ["preflight:gate:confirm-backup-completion", "preflight:check:backup_done", "migrate", "smoke:recent",
         "stage1:shift:10", "stage1:hold",
         "stage2:shift:100", "stage2:hold", "final_validation", "lock_in:promote"]


# --- steps ------------------------------------------------------------------------------------------


def test_steps_follow_the_runbook_preflight_migrate_smoke_stages_final_validation_lock_in():
    run = through_the_gate(runbook_run())

    while not run.state.finished:
        run.succeed()

    phases = [e for e in events(run.outputs) if isinstance(e, PhaseStarted)]
    assert [p.step for p in phases] == ORDER
    assert [p.phase for p in phases] == ["preflight", "preflight", "migrate", "smoke", "canary", "canary", "canary",
                                         "canary", "final_validation", "lock_in"]
    assert finished(run.outputs).outcome == "succeeded"
    (promote,) = [c for c in commands(run.outputs) if isinstance(c, PromoteTraffic)]
    assert (promote.canary, promote.stable) == ("deploy-new", "deploy-old")


def test_stage_hold_is_one_run_probes_with_every_check_and_the_guard_on_one_clock():
    run = at_hold()

    hold = run.awaited
    assert isinstance(hold, RunProbes) and hold.duration_s == 60 and hold.label == "stage 1 (10%)"
    recent, app, guard = hold.probes
    assert (recent.probe.name, recent.window_s, recent.duration_s) == ("recent", 30, 60)  # analysis.interval
    assert (app.probe.name, app.window_s) == ("app", 20)  # the check's own window
    assert isinstance(guard.probe, PgHealthProbeSpec) and guard.probe.database_url_env == "DB_URL"
    assert (guard.duration_s, guard.window_s, guard.load.mode, guard.load.rate) == (60, 30, "open", 0.5)
    assert (guard.thresholds.replica_lag_s, guard.thresholds.connection_use_pct) == (8, 80)
    assert run.state.deadline == run.clock + timedelta(seconds=60 + 60)


def test_http_probe_of_a_deployment_probes_the_new_one_and_the_previous_one_as_baseline():
    run = at_hold()

    app = run.awaited.probes[1]
    assert isinstance(app.probe, HttpProbeSpec) and app.probe.url == "https://app-deploy-new.example.com/api/health"
    assert app.baseline.url == "https://app-deploy-old.example.com/api/health"
    assert app.thresholds.p95_increase_ms == 50 and app.thresholds.p95_ms == 300
    assert run.awaited.probes[0].baseline is None  # an sql probe has no deployment to compare


def test_without_a_previous_deployment_there_is_no_baseline():
    run = Run(plan=plan_from(PLAN))
    run.start(take=False, previous_deploy_id=None)
    run.succeed()  # the traffic target is taken
    approve(run)
    run.advance_to("stage1:hold")

    assert run.awaited.probes[1].baseline is None


# --- preflight gates ---------------------------------------------------------------------------------


def test_preflight_gate_waits_for_an_approval_naming_no_stage_before_anything_runs():
    run = Run(plan=plan_from(PLAN))
    outputs = run.start()

    assert commands(outputs) == []
    assert events(outputs)[0].detail == "Confirm backup completion: waiting for `golive approve run-1`"
    assert approve(run, stage=1) == [] and run.current_step == "preflight:gate:confirm-backup-completion"
    opened = approve(run)
    assert [type(c) for c in work_commands(opened)] == [RunProbe]
    assert run.current_step == "preflight:check:backup_done"


def test_a_preflight_gate_is_named_for_what_it_confirms_never_by_a_number_a_stage_could_be_taken_for():
    two_gates = PLAN.replace("  - {gate: Confirm backup completion}\n",
                             "  - {gate: Confirm backup completion}\n  - {gate: Confirm backup completion}\n"
                             "  - {gate: 'Stakeholders (2) told?'}\n")
    run = Run(plan=plan_from(two_gates))
    run.start()

    gates = [s.name for s in run.state.steps if s.phase == "preflight" and s.kind == "gate"]
    assert gates == ["preflight:gate:confirm-backup-completion", "preflight:gate:confirm-backup-completion-again",
                     "preflight:gate:stakeholders-2-told"]
    assert all(ref_of_name(name) == StepRef(phase="preflight", kind="gate") for name in gates)


def test_approving_a_stage_while_the_run_waits_at_a_preflight_gate_says_which_gate_and_how_to_open_it():
    run = Run(plan=plan_from(PLAN))
    run.start()

    why = operator_refusal(ApproveGate(stage=2, approved_by="maksim"), run.state)

    assert why == ("run run-1 waits at the preflight gate preflight:gate:confirm-backup-completion (Confirm backup "
                   "completion), before any canary stage, not at stage 2: `golive approve run-1` without --stage opens it")


def test_failing_preflight_check_rolls_back_with_nothing_to_undo():
    run = through_the_gate(runbook_run())

    outputs = run.answer(probe_result("backup_done", passed=False, summary="error_rate_pct 100 > 0 over 40 requests"))

    assert "preflight:check:backup_done failed" in events(outputs)[0].reason
    assert finished(outputs).outcome == "rolled_back"
    assert not any(isinstance(c, ApplyMigrations) for c in commands(run.outputs))


# --- per-window analysis -----------------------------------------------------------------------------


def test_passing_window_is_judged_and_the_hold_goes_on():
    run = at_hold()

    outputs = window_of(run, 0)

    [verdict] = judged(outputs)
    assert (verdict.verdict, verdict.step, verdict.probe, verdict.index, verdict.guard) == ("pass", "stage1:hold", "recent", 0, False)
    assert verdict.reason == "stage 1 (10%): recent window 0 passed: p95 120 ms <= 400 ms, error rate 0% <= 1% over 1,200 requests"
    assert outputs[0].id == f"run-1/judged/{run.state.in_flight}/recent/0"
    assert run.current_step == "stage1:hold" and not run.state.compensating


def test_stage_rolls_back_after_two_consecutive_breaching_windows_without_waiting_for_the_hold():
    run = at_hold()
    hold_id = run.state.in_flight
    window_of(run, 0, p95=450.0)
    assert not run.state.compensating  # one failed window is not enough

    outputs = window_of(run, 1, p95=512.0, count=1_204)

    [verdict] = judged(outputs)
    assert verdict.verdict == "fail" and (verdict.failures, verdict.consecutive_failures) == (2, 2)
    assert verdict.reason == "stage 1 (10%): recent window 1 failed: p95 512 ms > 400 ms over 1,204 requests (2 consecutive)"
    failed = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed[0].cause == "analysis" and failed[0].step == "stage1:hold"
    assert failed[0].reason.endswith("2 consecutive failed windows of recent reach consecutive_failure_limit 2")
    assert stops(outputs) == [StopProbes(hold_id, stops(outputs)[0].reason)]
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]
    assert run.state.failed_at == run.clock  # the breach: the window's time


def test_failed_windows_add_up_across_the_stages_checks_to_the_failure_limit():
    run = at_hold()
    window_of(run, 0, p95=450.0)
    window_of(run, 1)  # a pass breaks the streak of recent
    window_of(run, 0, probe="app", p95=350.0)
    assert not run.state.compensating

    outputs = window_of(run, 2, p95=450.0)

    failed = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed and failed[0].cause == "analysis"
    assert failed[0].reason.endswith("3 failed windows in the stage reach failure_limit 3")
    assert judged(outputs)[0].consecutive_failures == 1


def test_consecutive_failures_are_counted_per_check_so_interleaved_windows_do_not_add_up():
    run = at_hold()

    window_of(run, 0, p95=450.0)
    window_of(run, 0, probe="app", p95=100.0)  # the other check passing does not break recent's streak
    outputs = window_of(run, 1, p95=450.0)

    assert judged(outputs)[0].consecutive_failures == 2
    assert run.state.compensating


def test_inconclusive_windows_are_no_failed_windows_by_default_and_are_with_inconclusive_fail():
    # what a hold with too few conclusive windows does at its end: tests/unit/test_inconclusive_policy.py
    ignoring = at_hold()
    for index in range(3):
        [verdict] = judged(window_of(ignoring, index, count=5))
        assert verdict.verdict == "inconclusive" and verdict.reason.endswith("5 requests < min_samples 20")
    assert not ignoring.state.compensating

    strict = at_hold(**{"consecutive_failure_limit: 2}": "consecutive_failure_limit: 2, inconclusive: fail}"})
    window_of(strict, 0, count=5)
    outputs = window_of(strict, 1, count=5)
    assert [e.cause for e in events(outputs) if isinstance(e, StepFailed)] == ["analysis"]


def test_guard_window_over_a_limit_fails_the_stage_at_once():
    run = at_hold()
    hold_id = run.state.in_flight

    outputs = window_of(run, 0, probe="db", count=15, replica_lag_s=9.5, connection_use_pct=40.0)

    [verdict] = judged(outputs)
    assert verdict.guard and verdict.verdict == "fail"
    assert verdict.reason == "stage 1 (10%): guard db window 0 breached: replica lag 9.5 s > 8 s"
    failed = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed[0].cause == "guard" and "replica lag 9.5 s > 8 s" in failed[0].reason
    assert [s.command_id for s in stops(outputs)] == [hold_id]
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_guard_window_within_its_limits_passes_whatever_the_sample_count():
    run = at_hold()

    [verdict] = judged(window_of(run, 0, probe="db", count=15, replica_lag_s=0.2, connection_use_pct=40.0))

    assert verdict.guard and verdict.verdict == "pass" and not run.state.compensating


@pytest.mark.parametrize("which", ["another command", "baseline target", "duplicate", "after the rollback began"])
def test_windows_that_are_not_of_the_hold_in_flight_change_nothing(which):
    run = at_hold()
    if which == "duplicate":
        window_of(run, 0, p95=450.0)
    if which == "after the rollback began":
        abort(run)
    before = run.state

    outputs = window_of(run, 0, p95=450.0, command_id="run-1.3.smoke:recent" if which == "another command" else None,
                        target="baseline" if which == "baseline target" else "probe")

    assert outputs == [] and run.state == before


def test_windows_are_not_judged_without_analysis_but_guards_still_are():
    plain = at_hold(**{"analysis: {interval: 30s, min_samples: 20, failure_limit: 3, consecutive_failure_limit: 2}\n": ""})
    assert window_of(plain, 0, p95=5_000.0) == []
    assert plain.awaited.probes[0].window_s is None and plain.awaited.probes[2].window_s == 30  # the guard's default

    assert judged(window_of(plain, 0, probe="db", replica_lag_s=20.0))[0].verdict == "fail"


def test_window_counts_start_over_in_each_stage():
    run = at_hold()
    window_of(run, 0, p95=450.0)
    run.succeed()  # the hold's totals pass
    run.advance_to("stage2:hold")

    outputs = window_of(run, 0, p95=450.0)

    assert (judged(outputs)[0].failures, judged(outputs)[0].consecutive_failures) == (1, 1)
    assert not run.state.compensating


def test_hold_failing_on_its_totals_fails_the_stage_without_a_stop():
    run = at_hold()

    outputs = run.answer(hold_result(passed=False, probes=["recent", "app", "db"]))

    failed = events(outputs)[0]
    assert isinstance(failed, StepFailed) and failed.cause == "threshold"
    assert "stage1:hold failed: recent: p95 512.00 > 400" in failed.reason
    assert stops(outputs) == []  # the probes are over: their answer is what failed the stage


def test_abort_during_a_hold_stops_its_probes_and_during_a_shift_does_not():
    holding = at_hold()
    hold_id = holding.state.in_flight
    assert [s.command_id for s in stops(abort(holding))] == [hold_id]

    shifting = through_the_gate(runbook_run())
    shifting.advance_to("stage1:shift:10")
    assert stops(abort(shifting)) == []


# --- final validation and lock-in -----------------------------------------------------------------------


def test_final_validation_runs_its_checks_as_one_run_probes_and_a_failure_rolls_back():
    run = at_hold(stage=2)
    run.succeed()

    validation = run.awaited
    assert run.current_step == "final_validation" and isinstance(validation, RunProbes)
    assert [(p.probe.name, p.duration_s, p.thresholds.p95_ms) for p in validation.probes] == [("recent", 10, 100)]
    outputs = run.answer(hold_result(passed=False))
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_failed_promotion_rolls_traffic_back_and_no_traffic_moves_forward_after():
    run = at_hold(stage=2)
    run.succeed()
    run.succeed()
    assert isinstance(run.awaited, PromoteTraffic)

    outputs = run.answer(failure("vercel API refused the promotion"))

    assert "lock_in:promote failed: vercel API refused the promotion" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]
    while not run.state.finished:
        outputs = run.succeed()
    assert finished(outputs).outcome == "rolled_back"
    assert not any(isinstance(c, ShiftTraffic | PromoteTraffic) for c in work_commands(outputs))


def test_promotion_read_back_short_of_100_rolls_back_as_a_read_back_failure():
    run = at_hold(stage=2)
    run.succeed()
    run.succeed()

    outputs = run.answer(TrafficPromoted(provider="vercel", canary="deploy-new", verified_weight=90))

    [failed] = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed.cause == "read_back" and failed.reason == "lock_in:promote failed: vercel reads back 90%, expected 100%"
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_rollback_read_back_above_0_is_an_undo_that_failed_and_a_rollback_that_changed_nothing_is_not_judged():
    run = at_hold()
    abort(run)
    assert isinstance(run.awaited, RollbackTraffic)

    outputs = run.answer(TrafficRolledBack(provider="envoy", canary="deploy-new", to="deploy-old", verified_weight=10))

    assert finished(outputs).outcome == "needs_human"
    assert finished(outputs).reason.endswith("then undoing stage1:shift:10 failed: envoy reads back 10%, expected 0%")

    untouched = at_hold()
    abort(untouched)
    untouched.answer(TrafficRolledBack(provider="envoy", canary="deploy-new", to="deploy-old", verified_weight=10,
                                       changed=False))  # another run holds the target: its weight stands
    assert untouched.state.outcome is None and not isinstance(untouched.awaited, RollbackTraffic)


def test_replaying_a_run_with_judged_windows_rebuilds_the_same_state():
    run = at_hold()
    window_of(run, 0, p95=450.0)
    window_of(run, 0, probe="db", replica_lag_s=1.0)
    window_of(run, 1, p95=450.0)
    while not run.state.finished:
        run.succeed()

    replayed = None
    for item in run.inputs:
        replayed, _ = decide(replayed, item)
    assert replayed == run.state
