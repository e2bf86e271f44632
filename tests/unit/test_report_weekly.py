"""The weekly performance report: a pure aggregation of the runs' summaries (each the fold of its run's events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from golive.services.coordinator.weekly import report_file_stem, weekly_markdown, weekly_report
from golive.shared.envelope import new_envelope
from golive.shared.events import WatchBreached
from golive.shared.run_summary import summaries_of
from tests.unit.report_runs import T0, RunBuilder, rolled_back_run

SINCE, UNTIL = datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)  # T0: Sunday 22nd, 02:00


def succeeded_run(run_id: str, start: datetime, p95: float, seconds: float = 200) -> list:
    run = RunBuilder(run_id, start)
    run.shift(1, 1, 10)
    run.result(2, p95)
    run.result(3, p95 / 2, probe="health")
    return run.finish(seconds)


def week_of_runs() -> list:
    watched = succeeded_run("run-a", T0 - timedelta(days=5), 30, seconds=100)
    watched.append(new_envelope(WatchBreached(index=0, deploy_id="dpl_new", probes=["recent"], reason="p95"),
                                id="run-a/breach", source="/golive/coordinator", runid="run-a",
                                time=T0 - timedelta(days=4)))
    events = (watched
              + rolled_back_run("run-b", T0 - timedelta(days=3))
              + succeeded_run("run-c", T0, 50, seconds=300)
              + succeeded_run("run-last-week", T0 - timedelta(days=8), 5))
    return sorted(events, key=lambda e: e.time)


def test_the_file_is_named_as_the_runbook_does():
    # `date +%Y%W` on the period's last day (Sunday the 22nd): week 46 of weeks starting on Monday
    assert report_file_stem(UNTIL) == "weekly_performance_report_202646"


def test_counts_runs_of_the_week_by_outcome_with_durations():
    report = weekly_report(summaries_of(week_of_runs()), SINCE, UNTIL)
    assert [r["run_id"] for r in report["runs"]] == ["run-a", "run-b", "run-c"]
    assert report["outcomes"] == {"succeeded": 2, "rolled_back": 1, "needs_human": 0, "running": 0}
    assert report["success_rate_pct"] == 66.7
    assert report["duration_s"] == {"median": 115, "mean": 171.7, "max": 300}
    assert report["post_deploy_breaches"] == 1 and report["runs"][0]["post_deploy_breaches"] == 1


def test_rollbacks_are_counted_by_cause_and_by_failed_step():
    rb = weekly_report(summaries_of(week_of_runs()), SINCE, UNTIL)["rollbacks"]
    assert rb["total"] == 1
    assert rb["by_cause"] == {"threshold": 1} and rb["by_step"] == {"stage2:hold": 1}
    assert rb["list"] == [{"run_id": "run-b", "step": "stage2:hold", "cause": "threshold", "reason": "p95 512 ms > 300 ms"}]


def test_p95_trend_per_probe_takes_each_runs_worst_in_start_order():
    trends = weekly_report(summaries_of(week_of_runs()), SINCE, UNTIL)["p95_trends"]
    assert [p["p95_ms"] for p in trends["recent"]["runs"]] == [30, 45, 50]
    assert (trends["recent"]["first_ms"], trends["recent"]["last_ms"], trends["recent"]["change_ms"]) == (30, 50, 20)
    assert [p["run_id"] for p in trends["health"]["runs"]] == ["run-a", "run-c"]


def test_a_run_still_going_and_events_of_a_rejected_start_are_handled():
    running = RunBuilder("run-open", T0).events
    stray = RunBuilder("run-rejected", T0).events[1:]  # no run_started: nothing to report
    report = weekly_report(summaries_of(running + stray), SINCE, UNTIL)
    assert report["outcomes"]["running"] == 1 and report["success_rate_pct"] is None
    assert report["runs"][0]["duration_s"] is None


def test_markdown_lists_summary_rollbacks_trends_and_runs():
    text = weekly_markdown(weekly_report(summaries_of(week_of_runs()), SINCE, UNTIL))
    assert text.startswith("# Weekly performance report 2026-W46")
    assert "runs: **3**: 2 succeeded, 1 rolled back" in text
    assert "| run-b | stage2:hold | threshold | p95 512 ms > 300 ms |" in text
    assert "| recent | 3 | 30 | 50 | +20 | 45 | 50 |" in text
    empty = weekly_markdown(weekly_report(summaries_of([]), SINCE, UNTIL))
    assert "None this week." in empty and "No probe results this week." in empty


def test_written_files_carry_no_credentials(tmp_path):
    from golive.services.coordinator.weekly import write_weekly

    run = RunBuilder("run-leaky", T0)
    run.rollback(5, reason="connection to postgresql://golive:hunter2@db.internal/app failed")
    report = weekly_report(summaries_of(run.finish(6, "rolled_back", "migrate failed")), SINCE, UNTIL)
    paths = write_weekly(report, tmp_path)
    assert len(paths) == 2  # the .json and the .md
    for path in paths:
        text = path.read_text()
        assert "hunter2" not in text and "postgresql://golive:***@db.internal/app" in text


def test_a_pipe_or_a_line_break_in_a_plan_name_or_a_reason_stays_in_its_cell():
    from tests.unit.report_runs import PLAN

    run = RunBuilder("run-odd", T0, plan=PLAN.model_copy(update={"name": "checkout | eu"}))
    run.rollback(5)
    report = weekly_report(summaries_of(run.finish(6, "rolled_back", "stage2:hold failed:\np95 | errors")), SINCE, UNTIL)

    [row] = [line for line in weekly_markdown(report).splitlines() if line.startswith("| 2026-") and "run-odd" in line]
    assert row.count(" | ") == 6, row  # seven cells, as the header has
    assert "checkout / eu" in row and "stage2:hold failed: p95 / errors" in row
