"""A run's summary (shared/run_summary.py): the fold of its events that listings and the weekly report read."""

from __future__ import annotations

from golive.shared.events import (
    ApprovalGranted,
    ContinueRequested,
    PauseRequested,
    PhaseStarted,
    RetryRequested,
    RunFinished,
    StepRef,
    WatchBreached,
)
from golive.shared.run_summary import RunSummary, WatchRecord, summaries_of, summary_of, with_watches
from tests.unit.report_runs import RunBuilder, rolled_back_run


def test_a_run_not_started_has_no_summary():
    assert summary_of(RunBuilder("run-x").events[1:]) is None


def test_a_started_run_is_running_at_the_step_it_reached():
    run = RunBuilder("run-1")
    run.shift(1, 1, 10)
    summary = summary_of(run.events)
    assert summary is not None
    assert (summary.state, summary.health, summary.outcome) == ("running", "Progressing", "running")
    assert (summary.phase, summary.step, summary.deploy_id, summary.previous_deploy_id) == (
        "canary", "stage1:shift:10", "dpl_new", "dpl_old")
    assert summary.finished_at is None and summary.duration_s is None


def test_a_paused_run_says_who_paused_it_until_it_continues():
    run = RunBuilder("run-1")
    run.add(PauseRequested(reason="looking at the dashboards", requested_by="maksim"), 2)
    paused = summary_of(run.events)
    assert paused is not None
    assert (paused.state, paused.health, paused.paused_by) == ("paused", "Paused", "maksim: looking at the dashboards")
    run.add(ContinueRequested(requested_by="maksim"), 3)
    going = summary_of(run.events)
    assert going is not None and (going.state, going.paused_by) == ("running", "")


def test_a_rolled_back_run_keeps_the_first_failure_and_the_end():
    summary = summary_of(rolled_back_run("run-b", RunBuilder().start_time))
    assert summary is not None
    assert (summary.state, summary.health) == ("rolled_back", "RolledBack")
    assert summary.rollback is not None and (summary.rollback.step, summary.rollback.cause) == ("stage2:hold", "threshold")
    assert summary.finished_at is not None and summary.duration_s is not None


def test_a_run_is_rolling_back_from_its_failure_until_it_ends():
    run = RunBuilder("run-1")
    run.rollback(5)
    summary = summary_of(run.events)
    assert summary is not None and (summary.state, summary.health) == ("compensating", "Degraded")
    assert summary.reason == "p95 512 ms > 300 ms"


def test_a_retry_of_a_needs_human_run_undoes_again_and_the_last_end_counts():
    run = RunBuilder("run-1")
    run.rollback(5)
    run.add(RunFinished(outcome="needs_human", reason="traffic rollback failed", duration_s=6), 6)
    assert summary_of(run.events).state == "needs_human"  # type: ignore[union-attr]
    run.add(RetryRequested(requested_by="maksim", reason="fixed the API key"), 7)
    assert summary_of(run.events).state == "compensating"  # type: ignore[union-attr]
    run.add(RunFinished(outcome="rolled_back", reason="undone", duration_s=8), 8)
    summary = summary_of(run.events)
    assert summary is not None and (summary.state, summary.reason, summary.duration_s) == ("rolled_back", "undone", 8)


def test_post_deploy_breaches_after_the_end_are_counted_and_a_watch_record_adds_later_ones():
    run = RunBuilder("run-1")
    run.finish(10)
    run.add(WatchBreached(index=0, deploy_id="dpl_new", probes=["recent"], reason="p95"), 20)
    summary = summary_of(run.events)
    assert summary is not None and summary.post_deploy_breaches == 1
    watch = WatchRecord(run_id="run-1", deploy_id="dpl_new", started_at=summary.started_at,
                        ends_at=summary.started_at, breaches=4)
    [merged] = with_watches([summary], [watch])
    assert merged.post_deploy_breaches == 4


def test_the_worst_p95_of_each_probe_is_kept():
    run = RunBuilder("run-1")
    run.result(1, 30)
    run.result(2, 80)
    run.result(3, 40)
    run.result(4, 5, probe="health")
    summary = summary_of(run.events)
    assert summary is not None and summary.p95_ms == {"health": 5, "recent": 80}


def test_summaries_of_many_runs_come_in_start_order():
    early, late = RunBuilder("run-early"), RunBuilder("run-late", RunBuilder().start_time.replace(hour=5))
    events = sorted(late.events + early.events, key=lambda e: e.id)
    assert [s.run_id for s in summaries_of(events)] == ["run-early", "run-late"]


def test_a_stored_summary_with_fields_of_a_newer_golive_is_still_read():
    summary = summary_of(RunBuilder("run-1").events)
    assert summary is not None
    stored = summary.model_dump_json()[:-1] + ', "added_later": 1}'
    assert RunSummary.model_validate_json(stored) == summary


def test_a_run_waiting_at_a_gate_is_listed_as_waiting_not_running_until_it_is_approved():
    """Finding 4 of issue 15 for the listing: `golive status` said `running` while a run waited at a gate."""
    run = RunBuilder("run-1")
    run.add(PhaseStarted(phase="preflight", step="preflight:gate:confirm-backup-completion",
                         at=StepRef(phase="preflight", kind="gate"), detail="Confirm backup completion"), 1)
    waiting = summary_of(run.events)
    assert waiting is not None
    assert (waiting.state, waiting.health, waiting.outcome) == ("waiting", "Paused", "running")
    assert waiting.reason == "waiting at preflight:gate:confirm-backup-completion: `golive approve run-1`"
    run.add(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot verified"), 2)
    going = summary_of(run.events)
    assert going is not None and (going.state, going.reason) == ("running", "")
