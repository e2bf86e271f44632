"""The live panel of `golive run` / `demo` (golive/views/live.py): the run's story rendered as `kubectl argo rollouts
get rollout --watch` users read one, from the events the coordinator's saga really emits (driven through its pure
decide(), tests/unit/saga_run.py), with the clock passed in (issue 15, finding 4)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

import golive.shared.commands  # noqa: F401  (registers every message type, as a service does)
from golive.shared.envelope import new_envelope, parse_envelope
from golive.shared.events import (
    AbortRequested,
    CommandFailed,
    ContinueRequested,
    LatencySummary,
    MigrationProgress,
    PauseRequested,
    PhaseStarted,
    ProbeWindow,
)
from golive.views.live import LiveView, fold, render, watching
from tests.builders import RunEvents
from tests.unit.saga_run import Run, plan_from
from tests.unit.story_runs import PLAN as RUNBOOK_PLAN
from tests.unit.story_runs import in_stage_one_hold, runbook_run

RECORDED = Path(__file__).parents[1] / "recorded" / "events-v1.jsonl"

# the story tests' runbook-shaped plan without its preflight check (the panel's step counts are of this one)
PLAN = RUNBOOK_PLAN.replace("  - {probe: backup_done, duration: 2s, thresholds: {error_rate_pct: 0}}\n", "").replace(
    "  backup_done: {query: SELECT 1}\n", "")


def approved(**replacements: str) -> Run:
    return runbook_run(PLAN, **replacements)


def panel(run: Run, after_s: float = 0.0, *more) -> str:
    """The panel once every event of ``run`` (then ``more``) is folded in, ``after_s`` after the last one."""
    events = (*run.stream, *more)
    view = LiveView()
    for envelope in events:
        view = fold(view, envelope)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(view, max(e.time for e in events) + timedelta(seconds=after_s)))
    return console.file.getvalue()


def late_window(run: Run, label: str, index: int):
    """A window the prober measured after the coordinator had decided (it stops the probes as it rolls back)."""
    stats = LatencySummary(count=600, errors=600, p50_ms=1.0, p95_ms=140.0, p99_ms=140.0, max_ms=140.0)
    data = ProbeWindow(command_id="late", probe="recent", index=index, start_s=index * 30.0, seconds=30.0,
                       stats=stats, label=label)
    return new_envelope(data, id=f"late/{index}", source="/golive/prober", runid=run.run_id,
                        time=run.clock + timedelta(milliseconds=10))


def rolled_back_at_stage_two(run: Run) -> Run:
    in_stage_one_hold(run)
    run.succeed()
    run.advance_to("stage2:hold")
    run.window(0, p95=130, count=600, errors=600)
    run.window(1, p95=140, count=600, errors=600)
    return run


# --- a run going on -----------------------------------------------------------------------------------------------


def test_a_hold_in_flight_shows_the_health_word_step_weights_ids_window_counts_and_guard_values():
    run = in_stage_one_hold(approved())

    shown = panel(run, after_s=0)

    assert "Progressing · step 5 of 11 · stage 1 (10%) hold" in shown
    assert "canary deploy-new · stable deploy-old · weight set 10%, read back 10%" in shown
    assert "stage 1 (10%) windows: 2 judged · failed 0/3 · in a row 0/2 · inconclusive 0 (too many pause the run)" in shown
    assert "guards (db): replica lag 1.5 s <= 8 s · connection use 40% <= 80%" in shown
    assert "pass (replica lag 1.5 s <= 8 s, connection use 40% <= 80%)" in shown  # the guard's window


def test_the_time_left_in_the_hold_ticks_down_between_events():
    run = approved()
    run.advance_to("stage1:hold")  # the hold started with the last event

    assert "60s left of 60s" in panel(run, after_s=0)
    assert "40s left of 60s" in panel(run, after_s=20)
    assert "0s left of 60s" in panel(run, after_s=90)


def test_failed_windows_count_against_the_plans_limits_with_their_numbers():
    run = in_stage_one_hold(approved())
    run.window(1, p95=512)

    shown = panel(run)

    assert "failed 1/3 · in a row 1/2" in shown
    assert "512.0 / 400" in shown and "fail (p95 512 ms > 400 ms)" in shown
    assert "Progressing" in shown  # one failed window of three allowed: the stage goes on


def test_waiting_at_a_gate_reads_paused_and_says_how_to_approve():
    run = Run(plan=plan_from(PLAN))
    run.start()

    shown = panel(run)

    assert "Paused · step 1 of 11 · the preflight gate" in shown
    assert 'WAITING at "Confirm backup completion": `golive approve run-1 --comment ...`' in shown
    assert "Progressing" not in shown


def test_a_paused_run_reads_paused_with_who_and_why_until_it_continues():
    run = in_stage_one_hold(approved())
    run.operator(PauseRequested(reason="checking the dashboards", requested_by="ana"))

    shown = panel(run)
    assert "Paused · step 5 of 11" in shown
    assert "PAUSED by ana: checking the dashboards: `golive continue run-1`" in shown

    run.operator(ContinueRequested(requested_by="ana", reason="dashboards fine"))
    shown = panel(run)
    assert "Progressing" in shown and "PAUSED" not in shown


def test_index_builds_show_their_progress_while_the_run_migrates_only():
    run = approved()
    progress = RunEvents(run.run_id, run.plan, start=run.clock).add(
        MigrationProgress(name="events_created", status="progress", phase="building index", overall_percent=42.0))

    assert "migration events_created: progress building index 42%" in panel(run, 0, progress)
    run.succeed()  # migrations applied: the smoke test runs
    assert "building index" not in panel(run, 0)


# --- the run's end -------------------------------------------------------------------------------------------------


def test_after_a_rollback_the_panel_shows_the_runs_end_not_the_undo_or_a_window_measuring():
    run = rolled_back_at_stage_two(approved())
    late = late_window(run, "stage 2 (50%)", 2)  # measured as the coordinator rolled back: never judged
    while not run.state.finished:
        run.succeed()

    shown = panel(run, 0, late)

    assert "measuring" not in shown
    assert "undoing" not in shown and "phase rollback" not in shown and "compensat" not in shown
    assert "RolledBack · step 7 of 11 · rolled back after" in shown
    assert "why: stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows" in shown
    assert "stages: 10% ✓ → 50% ✗ → 100% -" in shown
    assert "traffic back on deploy-old, canary read back 0%" in shown
    assert "undone: traffic back on deploy-old" in shown and "undone: indexes dropped: idx_events_created" in shown
    assert "failed 2/3 · in a row 2/2" in shown  # the deciding stage's windows against the limits
    assert "Progressing" not in shown and "hold ·" not in shown


def test_while_it_rolls_back_it_reads_degraded_with_the_reason_and_what_it_undoes():
    run = rolled_back_at_stage_two(approved())

    shown = panel(run)

    assert "Degraded · step 7 of 11 · rolling back: undoing stage1:shift:10" in shown
    assert "why: stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows" in shown


def test_a_run_left_for_a_human_says_what_is_left_to_undo_and_how_to_retry():
    run = rolled_back_at_stage_two(approved())
    run.succeed()  # the traffic is back on stable
    run.answer(CommandFailed(service="migrator", command_type="golive.cmd.migrator.revert.v1", reason="lock timeout"))

    shown = panel(run)

    assert "NeedsHuman · step 7 of 11 · needs a human" in shown
    assert "left to undo: migrate: `golive retry run-1` once the cause is fixed" in shown
    assert "undone: traffic back on deploy-old" in shown
    assert "undoing: migrate" not in shown and "kept" not in shown  # the index is not kept on purpose: its drop failed


def test_during_the_final_validation_the_last_stages_windows_are_gone():
    run = in_stage_one_hold(approved())
    run.succeed()
    for stage in (2, 3):
        run.advance_to(f"stage{stage}:hold")
        run.window(0, p95=120 + stage)
        run.succeed()
    assert run.current_step == "final_validation"

    shown = panel(run)
    assert "123.0" not in shown and "windows:" not in shown  # stage 3's window and counts
    assert "Progressing · step 10 of 11 · the final validation" in shown

    assert "guards" not in shown  # read through the stages' holds only

    run.window(0, p95=80)  # the final validation's own window
    assert "80.0" in panel(run)


def test_a_run_that_went_live_reads_healthy_at_its_last_step():
    run = in_stage_one_hold(approved())
    while not run.state.finished:
        run.succeed()

    shown = panel(run)

    assert "Healthy · step 11 of 11 · succeeded after" in shown
    assert "stages: 10% ✓ → 50% ✓ → 100% ✓" in shown
    assert "measuring" not in shown and "windows:" not in shown


# --- on a terminal or not -----------------------------------------------------------------------------------------


def test_off_a_terminal_watching_prints_the_same_lines_as_before():
    lines: list[str] = []

    def line(envelope) -> None:
        lines.append(envelope.type)

    console = Console(file=io.StringIO())  # not a TTY: a pipe, CI, a test
    with watching(console, False, line) as echo:
        assert echo is line
    with watching(Console(file=io.StringIO(), force_terminal=True), True, line) as echo:
        assert echo is line  # --json stays JSON lines on a terminal too


def test_on_a_terminal_the_panel_folds_every_event_and_windows_do_not_scroll_as_lines():
    run = approved()
    run.advance_to("stage1:hold")
    run.window(0, p95=12.5)
    lines: list[str] = []
    terminal = Console(file=io.StringIO(), force_terminal=True, width=160)
    with watching(terminal, False, lambda e: lines.append(e.type)) as echo:
        for e in run.stream:
            echo(e)
    assert "golive.prober.probe_window.v1" not in lines and "golive.coordinator.phase_started.v1" in lines
    assert "stage 1 (10%) hold" in terminal.file.getvalue()


def test_on_a_terminal_the_panel_stays_at_the_runs_end_once_the_run_ended():
    run = rolled_back_at_stage_two(approved())
    while not run.state.finished:
        run.succeed()
    terminal = Console(file=io.StringIO(), force_terminal=True, width=160)
    with watching(terminal, False, lambda e: None) as echo:
        for e in run.stream:
            echo(e)

    last = terminal.file.getvalue().rstrip("\n").rsplit("\x1b[2K", 1)[-1]  # what is on screen after the last erase
    assert "RolledBack · step 7 of 11 · rolled back after" in last and "why: stage 2 (50%) failed" in last, last


def test_a_phase_started_before_run_started_is_read_as_starting():
    envelope = RunEvents("run-1").add(PhaseStarted(phase="canary", step="stage1:hold", detail=""))
    view = fold(LiveView(), envelope)
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(view, datetime.now(envelope.time.tzinfo)))
    assert "Progressing" in console.file.getvalue()


def test_the_recorded_rolled_back_run_ends_the_panel_at_its_end():
    """A real run's events (tests/recorded/events-v1.jsonl: rolled back at stage 2 by its windows), as `golive run`
    folded them on a terminal: the panel's last state is the run's end."""
    lines = (json.loads(line)["body"] for line in RECORDED.read_text().splitlines())
    events = [parse_envelope(json.dumps(body).encode()) for body in lines if body["runid"] == "run-rec-rollback"]
    view = LiveView()
    for envelope in events:
        view = fold(view, envelope)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(view, events[-1].time + timedelta(seconds=1)))
    shown = console.file.getvalue()

    assert "measuring" not in shown and "undo:" not in shown and "undoing" not in shown and "phase rollback" not in shown, shown
    assert "RolledBack · step 6 of 8 · rolled back after 3.4s" in shown
    assert "why: stage 2 (50%) failed: slow_query p95 31.98 ms > 20 ms in 2 consecutive windows" in shown


def test_a_run_that_failed_before_changing_anything_says_so_and_draws_no_stages():
    run = Run(plan=plan_from(PLAN))
    run.start()
    run.operator(AbortRequested(reason="no backup tonight", requested_by="maksim"))  # at the preflight gate
    while not run.state.finished:
        run.succeed()

    shown = panel(run)

    assert "Degraded · step 1 of 11 · failed after" in shown and ": nothing to undo" in shown, shown
    assert "why: the preflight gate: aborted by maksim: no backup tonight" in shown
    assert "stages:" not in shown and "undone" not in shown and "rollback" not in shown
