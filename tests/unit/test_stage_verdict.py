"""A stage's verdict is the coordinator's decision, emitted once as its own event (StageJudged), not something a
reader infers from which step came next."""

from __future__ import annotations

from datetime import timedelta

from golive.shared.envelope import new_envelope
from golive.shared.events import (
    AbortRequested,
    LatencySummary,
    PauseRequested,
    PhaseStarted,
    ProbeWindow,
    RunFinished,
    StageJudged,
    StepFailed,
)
from tests.unit.saga_run import Run, events, hold_result, plan_from, started_run

ANALYSED = plan_from(**{"retries:": "analysis: {interval: 30s, min_samples: 20, failure_limit: 3, "
                                    "consecutive_failure_limit: 2}\nretries:"})


def verdicts(run: Run) -> list[StageJudged]:
    return [e for e in events(run.outputs) if isinstance(e, StageJudged)]


def test_each_stage_is_judged_passed_once_when_its_hold_passes_before_the_next_step_starts():
    run = started_run()
    while run.state.outcome is None:
        run.succeed()

    assert [(v.stage, v.weight, v.verdict) for v in verdicts(run)] == [(1, 10, "pass"), (2, 100, "pass")]
    assert verdicts(run)[0].reason == "stage1:hold passed: recent: p95 3.10 <= 400 over 300 requests"
    said = [type(e) for e in events(run.outputs)]
    first = said.index(StageJudged)
    assert said[first + 1] is PhaseStarted  # stage 1 passed, then stage 2 starts
    assert said[-2:] == [StageJudged, RunFinished]  # the last stage passed, then the run succeeded


def test_stage_whose_hold_fails_is_judged_failed_once_with_the_reason_and_no_later_stage_is_judged():
    run = started_run()
    run.advance_to("stage2:hold")

    run.answer(hold_result(passed=False))
    while run.state.outcome is None:
        run.succeed()  # the compensations

    assert [(v.stage, v.verdict) for v in verdicts(run)] == [(1, "pass"), (2, "fail")]
    failed = verdicts(run)[1]
    assert failed.weight == 100
    assert failed.reason == "stage2:hold failed: recent: p95 512.00 > 400 over 300 requests"


def test_stage_failed_by_its_windows_is_judged_with_the_windows_it_judged_and_failed():
    run = started_run(plan=ANALYSED)
    run.advance_to("stage1:hold")

    for index in range(2):
        stats = LatencySummary(count=1_200, errors=0, p50_ms=250.0, p95_ms=512.0, p99_ms=512.0, max_ms=512.0)
        window = ProbeWindow(command_id=run.state.in_flight, probe="recent", index=index, start_s=index * 30.0,
                             seconds=30.0, stats=stats)
        run.clock += timedelta(seconds=30)
        run.feed(new_envelope(window, id=f"window/{index}", source="/golive/prober", runid=run.run_id, time=run.clock))

    [verdict] = verdicts(run)
    assert (verdict.stage, verdict.verdict, verdict.windows, verdict.failed_windows) == (1, "fail", 2, 2)
    assert "consecutive_failure_limit 2" in verdict.reason


def test_stage_that_holds_nothing_is_judged_passed_when_its_shift_is_read_back():
    plan = plan_from(**{"      hold: 60s\n      checks: [{probe: recent, duration: 10s}]": "      hold: 60s"})
    run = started_run(plan=plan)
    run.advance_to("stage2:shift:100")

    outputs = run.succeed()

    [verdict] = [e for e in events(outputs) if isinstance(e, StageJudged)]
    assert (verdict.stage, verdict.verdict) == (2, "pass")
    assert verdict.reason == "stage2:shift:100 passed; the stage holds no checks"


def test_stage_passed_while_paused_is_not_judged_again_when_the_paused_run_is_aborted():
    run = started_run()
    run.advance_to("stage1:hold")
    run.clock += timedelta(seconds=1)
    run.feed(new_envelope(PauseRequested(reason="dashboards", requested_by="maksim"), id="pause", source="/golive/coordinator",
                          runid=run.run_id, time=run.clock))
    run.succeed()  # the hold passes; the paused run holds stage 2 back

    run.clock += timedelta(seconds=1)
    run.feed(new_envelope(AbortRequested(reason="error budget", requested_by="maksim"), id="abort",
                          source="/golive/coordinator", runid=run.run_id, time=run.clock))

    assert any(isinstance(e, StepFailed) for e in events(run.outputs))  # the abort failed the run
    assert [(v.stage, v.verdict) for v in verdicts(run)] == [(1, "pass")]


def test_replaying_a_run_rebuilds_which_stages_were_judged():
    run = started_run()
    run.advance_to("stage2:hold")
    replayed = Run()
    for item in run.inputs:
        replayed.feed(item)

    assert replayed.state == run.state
    assert replayed.state.judged_stage == 1
