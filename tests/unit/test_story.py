"""A run's story (shared/story/): folded from the events the coordinator's saga really emits (driven through its pure
decide(), tests/unit/saga_run.py) and from the recorded stream of real runs; what every output renders."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import golive.shared.commands  # noqa: F401  (registers every message type, as a service does)
from golive.plans import RUNBOOK, SKELETON
from golive.services.coordinator.steps import build_steps
from golive.shared.envelope import parse_envelope
from golive.shared.events import (
    AbortRequested,
    ApprovalGranted,
    CommandFailed,
    ContinueRequested,
    PauseRequested,
    RunStarted,
)
from golive.shared.plan import load_plan, plan_of
from golive.shared.story import RunStory, fold, outline, story_of
from tests.builders import RunEvents, skeleton_dict
from tests.unit.saga_run import Run, hold_result, plan_from, probe_result
from tests.unit.story_runs import PLAN, held_stage_one, rolled_back_at_stage_two, runbook_run, story, went_live

RECORDED = Path(__file__).parents[1] / "recorded" / "events-v1.jsonl"

# --- outcome, health word and reason ------------------------------------------------------------------------------


def test_a_run_rolled_back_by_its_windows_reads_rolled_back_with_the_deciding_numbers_not_a_step_name():
    told = story(rolled_back_at_stage_two())

    assert (told.outcome, told.health) == ("rolled_back", "RolledBack")
    assert told.reason == "stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows"
    assert "stage2:" not in told.reason and "shift" not in told.reason
    assert told.step_of == "step 8 of 12"  # stage 2's hold, of the plan's 12 steps
    assert told.deciding_stage is told.stages[1]


def test_each_stage_has_its_windows_with_verdicts_counts_and_numbers_against_its_own_limits():
    told = story(rolled_back_at_stage_two())
    one, two, three = told.stages

    assert (one.state, one.verdict, one.weight_set, one.weight_read_back) == ("passed", "pass", 10, 10)
    assert [(w.probe, w.index, w.verdict) for w in one.windows] == [("recent", 0, "pass"), ("db", 0, "pass"),
                                                                    ("recent", 1, "pass")]
    assert (two.state, two.verdict, two.failed_windows, two.inconclusive_windows) == ("failed", "fail", 2, 0)
    assert [w.breaches for w in two.windows] == ["error rate 50% > 1.5%", "error rate 50% > 1.5%"]
    assert [(w.failures, w.consecutive) for w in two.windows] == [(1, 1), (2, 2)]
    assert two.limits == {"recent": {"p95_ms": 400.0, "error_rate_pct": 1.5}}
    assert three.state == "pending" and three.windows == ()
    assert (told.analysis.failure_limit, told.analysis.consecutive_failure_limit) == (3, 2)


def test_timings_breach_to_rollback_runs_from_the_first_failed_window_to_traffic_read_back_on_stable():
    told = story(rolled_back_at_stage_two())
    first_failed = told.stages[1].windows[0]

    assert told.breach_at == first_failed.at
    assert told.rollback_verified_at is not None
    assert told.breach_to_rollback_s == (told.rollback_verified_at - first_failed.at).total_seconds() > 0
    assert told.rollback_s == (told.finished_at - told.failure.at).total_seconds()
    assert told.duration_s is not None and told.started_at is not None


def test_what_was_undone_is_said_in_words_and_nothing_is_kept_when_indexes_are_dropped():
    told = story(rolled_back_at_stage_two())

    assert [(u.undoes, u.what) for u in told.undone] == [
        ("stage1:shift:10", "traffic back on deploy-old (canary read back 0%)"),
        ("migrate", "indexes dropped: idx_events_created"),
    ]
    assert told.kept == () and told.left_to_undo == ()
    assert (told.traffic.weight_set, told.traffic.weight_read_back, told.traffic.rolled_back_to) == (0, 0, "deploy-old")


def test_indexes_are_kept_on_rollback_when_the_plan_keeps_them():
    told = story(rolled_back_at_stage_two(**{"rollback: {drop_indexes: true}": "rollback: {drop_indexes: false}"}))

    assert told.drop_indexes is False
    assert [u.undoes for u in told.undone] == ["stage1:shift:10"]
    assert told.kept == ("idx_events_created",)


def test_a_run_that_went_live_is_healthy_at_its_last_step_with_every_stage_passed():
    told = story(went_live())

    assert (told.outcome, told.health, told.step_of) == ("succeeded", "Healthy", "step 12 of 12")
    assert [s.verdict for s in told.stages] == ["pass", "pass", "pass"]
    assert told.traffic.promoted and told.traffic.weight_read_back == 100
    assert told.failure is None and told.breach_to_rollback_s is None and told.kept == ()
    assert told.reason == "every phase passed"


def test_a_failed_preflight_check_changed_nothing_and_says_so():
    run = runbook_run()
    run.answer(probe_result("backup_done", passed=False, summary="p95 512.00 > 400 over 300 requests"))
    told = story(run)

    assert (told.outcome, told.health) == ("failed", "Degraded")
    assert told.reason == "preflight check backup_done failed: backup_done p95 512 ms > 400 ms over 300 requests"
    assert told.undone == () and told.traffic.weight_set is None


def test_a_hold_failed_on_its_totals_names_the_failing_check_with_its_numbers():
    run = runbook_run()
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False, probes=["recent", "db"], label="stage 1 (10%)"))
    told = story(run)

    assert told.reason == "stage 1 (10%) failed: recent p95 512 ms > 400 ms over 300 requests"
    assert [c.name for c in told.failed_checks] == ["stage 1 (10%): recent p95_ms"]


def test_a_guard_breach_gives_the_gauge_against_its_limit_and_the_last_guard_values():
    run = runbook_run()
    run.advance_to("stage1:hold")
    run.window(0, probe="db", count=30, replica_lag_s=9.5, connection_use_pct=41.0, connections=7.0)
    told = story(run)

    assert told.reason == "stage 1 (10%) failed: guard db replica lag 9.5 s > 8 s"
    assert told.guard_values == {"replica_lag_s": 9.5, "connection_use_pct": 41.0}  # the guard's gauges, not its counts
    assert told.guard_limits == {"replica_lag_s": 8.0, "connection_use_pct": 80.0}


def test_a_run_left_for_a_human_says_what_failed_then_what_could_not_be_undone():
    run = held_stage_one(runbook_run())
    run.advance_to("stage2:hold")
    run.window(0, p95=130, count=600, errors=600)
    run.window(1, p95=140, count=600, errors=600)
    run.answer(CommandFailed(service="traffic", command_type="golive.cmd.traffic.rollback.v1", reason="vercel: 503"))
    told = story(run)

    assert (told.outcome, told.health) == ("needs_human", "NeedsHuman")
    assert told.reason.startswith("stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows; then ")
    assert "vercel: 503" in told.reason
    assert told.left_to_undo == ("stage1:shift:10", "migrate")


# --- people -------------------------------------------------------------------------------------------------------


def test_waiting_at_a_gate_or_paused_reads_paused_and_every_operator_action_keeps_who_why_and_when():
    run = Run(plan=plan_from(PLAN))
    run.start()
    assert story(run).health == "Paused" and story(run).waiting_at_gate
    assert story(run).reason == 'waiting at "Confirm backup completion" for `golive approve run-1`'

    run.operator(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot 02:01 verified"))
    assert story(run).health == "Progressing"
    run.operator(PauseRequested(reason="checking the dashboards", requested_by="ana"))
    paused = story(run)
    run.operator(ContinueRequested(requested_by="ana", reason="dashboards fine"))
    run.operator(AbortRequested(reason="error budget burning", requested_by="lee"))
    told = story(run)

    assert paused.health == "Paused" and paused.paused is not None and paused.paused.by == "ana"
    assert paused.reason == "paused by ana: checking the dashboards"
    assert [(a.kind, a.by, a.why) for a in told.actions] == [
        ("approve", "maksim", "snapshot 02:01 verified"), ("pause", "ana", "checking the dashboards"),
        ("continue", "ana", "dashboards fine"), ("abort", "lee", "error budget burning")]
    assert told.actions[0].gate == "Confirm backup completion"
    assert told.actions[0].words() == 'approved "Confirm backup completion" (maksim: snapshot 02:01 verified)'
    assert told.reason == "preflight check backup_done: aborted by lee: error budget burning"
    assert all(a.at is not None for a in told.actions)


# --- folding, one event at a time ---------------------------------------------------------------------------------


def test_folding_event_by_event_shows_the_hold_in_flight_and_its_windows_as_they_come():
    run = runbook_run()
    run.advance_to("stage1:hold")
    run.window(0, p95=120)
    live = RunStory()
    for envelope in run.stream:
        live = fold(live, envelope)

    assert live == story(run)
    assert (live.outcome, live.health, live.phase, live.step_ref.kind) == ("running", "Progressing", "canary", "hold")
    assert [(w.probe, w.verdict) for w in live.step_windows] == [("recent", "pass")]
    assert live.stage is live.stages[0] and live.stage.state == "holding"
    assert live.step_started_at is not None and live.stage.hold_s == 60
    assert live.hold_ends_at == live.step_started_at + timedelta(seconds=60)


def test_once_the_run_ended_nothing_is_in_flight():
    run = held_stage_one(runbook_run())
    run.advance_to("stage2:hold")
    run.window(0, p95=130, count=600, errors=600)
    failing = story(run)
    run.window(1, p95=140, count=600, errors=600)
    while not run.state.finished:
        run.succeed()
    ended = story(run)

    assert failing.step_windows and failing.hold_ends_at is not None
    assert (ended.phase, ended.step_windows, ended.hold_ends_at, ended.undoing) == ("done", (), None, None)
    assert ended.step == "stage2:hold"  # where it stopped, for "step 8 of 12"


# --- the plan's steps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [plan_from(PLAN), load_plan(SKELETON), load_plan(RUNBOOK)], ids=["checkout", "skeleton",
                                                                                                   "runbook"])
def test_the_story_counts_the_steps_the_coordinator_runs(plan):
    assert [(s.name, s.ref) for s in outline(plan)] == [(s.name, s.ref) for s in build_steps(plan, "dpl_new", "dpl_old")]


def test_a_plan_carried_by_run_started_is_outlined_like_the_file():
    events = RunEvents(plan=skeleton_dict())
    started = events.started(0)
    assert isinstance(started.data, RunStarted)
    assert story_of(events.events).steps == outline(plan_of(started.data))


# --- the recorded stream of real runs -----------------------------------------------------------------------------


def recorded_runs() -> dict[str, RunStory]:
    runs: dict[str, list] = {}
    for line in RECORDED.read_text().splitlines():
        body = json.loads(line)["body"]
        runs.setdefault(body["runid"], []).append(parse_envelope(json.dumps(body).encode()))
    return {run_id: story_of(events) for run_id, events in runs.items()}


def test_the_recorded_runs_replay_into_their_stories():
    runs = recorded_runs()
    ok, rolled_back = runs["run-rec-ok"], runs["run-rec-rollback"]

    assert (ok.outcome, ok.health, ok.step_of) == ("succeeded", "Healthy", "step 8 of 8")
    assert [s.state for s in ok.stages] == ["passed"] * 3
    assert (rolled_back.outcome, rolled_back.health, rolled_back.step_of) == ("rolled_back", "RolledBack", "step 6 of 8")
    assert rolled_back.reason == "stage 2 (50%) failed: slow_query p95 31.98 ms > 20 ms in 2 consecutive windows"
    assert [s.state for s in rolled_back.stages] == ["passed", "failed", "pending"]
    assert rolled_back.breach_to_rollback_s is not None and 0 < rolled_back.breach_to_rollback_s < 1
    assert [u.undoes for u in rolled_back.undone] == ["stage1:shift:10", "migrate"]
    assert rolled_back.plan_name == "skeleton" and rolled_back.deploy_id == "dpl_breach"
