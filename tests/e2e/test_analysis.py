"""Per-window analysis and guards end to end: the coordinator judges each window of a stage hold as the
prober publishes it, rolls back at the breach instead of at the end of the hold, and stops the hold's probes."""

from __future__ import annotations

import time

import pytest

from golive.shared.events import PauseRequested, ProbesCompleted, ProbeWindow, StageJudged, StepFailed, WindowJudged
from golive.shared.story import story_of
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import panel_at_end, run_events
from tests.harness import background_run, finish_after, run_cli, wait_for_output

pytestmark = pytest.mark.e2e

HOLD_S = 30  # far longer than the test takes: only the analysis (or the guard) ends it


def long_first_stage(**extra):
    def edit(plan: dict) -> None:
        plan["canary"]["stages"][0]["hold"] = f"{HOLD_S}s"
        plan.update(extra)
    return edit


def stopped_hold(settings, run_id: str) -> ProbesCompleted:
    """The hold's answer: it comes after the rollback began (the prober stops when told), so wait for it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answers = [e.data for e in run_events(settings, run_id) if isinstance(e.data, ProbesCompleted)]
        if answers:
            return answers[0]
        time.sleep(0.5)
    raise AssertionError(f"no probes_completed for {run_id}: the hold was not stopped")


@pytest.mark.timing  # the first two windows must each hold min_samples: measured rates decide it
def test_breaching_windows_roll_the_stage_back_before_its_hold_ends_and_stop_its_probes(
    services, settings, process_env, tmp_path
):
    def slow_stage_1(plan: dict) -> None:
        long_first_stage(analysis={"interval": "500ms", "min_samples": 3, "consecutive_failure_limit": 2})(plan)
        plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
        plan["canary"]["stages"][0]["checks"] = [{"probe": "slow_query", "thresholds": {"p95_ms": 20}}]

    result = run_cli("run", str(skeleton_plan(tmp_path, edit=slow_stage_1)), "--run-id", "run-windows", env=process_env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "slow_query window 1 failed: p95" in result.stdout and "(2 consecutive)" in result.stdout
    events = [e.data for e in run_events(settings, "run-windows")]
    [failed] = [e for e in events if isinstance(e, StepFailed)]
    assert (failed.step, failed.cause) == ("stage1:hold", "analysis")
    assert [w.verdict for w in events if isinstance(w, WindowJudged)][:2] == ["fail", "fail"]
    hold = stopped_hold(settings, "run-windows")
    assert hold.stopped and "stop requested" in hold.stopped and "rolling back" in hold.stopped
    assert hold.duration_s < HOLD_S / 2
    # the live panel's last state is the run's end: no window still measuring, no undo in flight (finding 4)
    panel = panel_at_end(settings, "run-windows")
    assert "RolledBack · step 4 of 8 · rolled back after" in panel, panel
    assert "why: stage 1 (10%) failed: slow_query p95 " in panel and "in 2 consecutive windows" in panel
    assert "stage 1 (10%) windows: " in panel and "in a row 2/2" in panel
    assert "measuring" not in panel and "undoing" not in panel and "phase rollback" not in panel


def test_guard_breach_rolls_the_stage_back_at_its_first_window(services, settings, process_env, tmp_path):
    # any client connection is over a 0.01% limit: the real pg_health gauge breaches at once
    edit = long_first_stage(analysis={"interval": "500ms"},
                            guards={"probe": "db_health", "connection_use_pct": 0.01, "sample_every": "200ms"})

    def with_guard(plan: dict) -> None:
        edit(plan)
        plan["probes"]["db_health"] = {"kind": "pg_health"}

    result = run_cli("run", str(skeleton_plan(tmp_path, edit=with_guard)), "--run-id", "run-guard", env=process_env)

    assert result.returncode == 1, result.stdout + result.stderr
    events = [e.data for e in run_events(settings, "run-guard")]
    [failed] = [e for e in events if isinstance(e, StepFailed)]
    assert (failed.step, failed.cause) == ("stage1:hold", "guard")
    assert "guard db_health window 0 breached: connection use" in failed.reason
    assert any(isinstance(w, WindowJudged) and w.guard and w.verdict == "fail" for w in events)
    assert stopped_hold(settings, "run-guard").duration_s < HOLD_S / 2
    panel = panel_at_end(settings, "run-guard")
    assert "RolledBack" in panel and "why: stage 1 (10%) failed: guard db_health connection use " in panel, panel
    assert "measuring" not in panel and "undoing" not in panel


def test_a_stage_whose_windows_are_all_too_thin_to_judge_pauses_until_continue(services, settings, process_env,
                                                                              tmp_path):
    # every window of stage 1 holds fewer requests than min_samples: no evidence of health, so no quiet pass
    def thin_stage_1(plan: dict) -> None:
        plan["analysis"] = {"interval": "500ms", "min_samples": 1_000_000}
        for stage in plan["canary"]["stages"][1:]:
            stage["checks"] = []  # later stages hold nothing: only stage 1 is judged

    with background_run(skeleton_plan(tmp_path, edit=thin_stage_1), "run-thin", process_env) as run:
        wait_for_output(run, "paused by golive")
        status = run_cli("status", "run-thin", env=process_env).stdout
        assert "paused by golive: stage 1 (10%) inconclusive: " in status, status
        assert "< min_samples 1000000" in status and "`golive continue run-thin`" in status, status
        assert run.poll() is None  # waiting, with nothing in flight
        out, err = finish_after(run, "continue", "run-thin", "--reason", "slow but healthy", env=process_env)
    assert run.returncode == 0, out + err
    events = [e.data for e in run_events(settings, "run-thin")]
    [paused] = [e for e in events if isinstance(e, PauseRequested)]
    assert paused.requested_by == "golive" and "stripe_recent " in paused.reason and " windows inconclusive" in paused.reason
    stage_1 = next(e for e in events if isinstance(e, StageJudged) and e.stage == 1)
    assert stage_1.verdict == "pass" and stage_1.inconclusive_windows == stage_1.windows > 0
    assert "continued by" in stage_1.reason


def test_an_extended_hold_keeps_every_window_of_its_stage_in_the_runs_story(services, settings, process_env, tmp_path):
    # analysis.inconclusive: extend holds stage 1 once more; its windows are the stage's too, after the hold's own
    def thin_stage_1_extended(plan: dict) -> None:
        plan["analysis"] = {"interval": "500ms", "min_samples": 1_000_000, "inconclusive": "extend"}
        for stage in plan["canary"]["stages"][1:]:
            stage["checks"] = []

    with background_run(skeleton_plan(tmp_path, edit=thin_stage_1_extended), "run-extended", process_env) as run:
        wait_for_output(run, "paused by golive")  # the extension was inconclusive too
        out, err = finish_after(run, "continue", "run-extended", "--reason", "slow but healthy", env=process_env)
    assert run.returncode == 0, out + err
    events = run_events(settings, "run-extended")
    holds = [e.id for e in events if isinstance(e.data, ProbesCompleted) and e.data.results[0].label == "stage 1 (10%)"]
    assert len(holds) == 2  # the hold and its extension
    sent = [(w.data.command_id, w.data.index) for w in events
            if isinstance(w.data, ProbeWindow) and w.data.label == "stage 1 (10%)" and w.data.target == "probe"]
    first, extension = sorted({command for command, _index in sent}, key=len)
    assert extension == f"{first}.extended"
    held, extended = [i for c, i in sent if c == first], [i for c, i in sent if c == extension]
    assert extended == list(range(len(held), len(held) + len(extended))) and extended, sent

    stage_1 = story_of(events).stages[0]
    verdict = next(e.data for e in events if isinstance(e.data, StageJudged) and e.data.stage == 1)
    windows = [(w.probe, w.index) for w in stage_1.windows]
    assert len(windows) == len(set(windows)) == verdict.windows == len(sent) > 2, windows
    assert [i for _p, i in windows] == sorted(i for _p, i in windows)  # in order: the hold's, then its extension's
    assert all(w.verdict == "inconclusive" for w in stage_1.windows)
