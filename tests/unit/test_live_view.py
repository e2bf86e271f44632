"""The live view of `golive run`: a pure fold of the run's events, rendered with the clock passed in."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from golive.views.live import LiveView, fold, render, watching
from shared.envelope import Message
from shared.events import (
    ContinueRequested,
    LatencySummary,
    MigrationProgress,
    PauseRequested,
    PhaseStarted,
    ProbeWindow,
    TrafficShifted,
    WindowJudged,
)
from tests.builders import RunEvents, checkout_plan

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
PLAN = checkout_plan("""
canary:
  stages:
    - weight: 10
      hold: 60s
      checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}]
    - weight: 100
      hold: 30s
""")


def event(data: Message, at_s: float):
    """``data`` as the service its type names publishes it in run-1, ``at_s`` seconds in."""
    return RunEvents("run-1", PLAN, start=T0).add(data, at_s)


def window(index: int, p95_ms: float, errors: int = 0, count: int = 500):
    stats = LatencySummary(count=count, errors=errors, p50_ms=1.0, p95_ms=p95_ms, p99_ms=p95_ms, max_ms=p95_ms)
    return ProbeWindow(command_id="run-1.3.stage1:hold", probe="recent", index=index, start_s=index * 10.0,
                       seconds=10.0, stats=stats)


def folded(*events) -> LiveView:
    view = LiveView()
    for e in events:
        view = fold(view, e)
    return view


def text(view: LiveView, at_s: float) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(view, T0 + timedelta(seconds=at_s)))
    return console.file.getvalue()


def stage_one_hold(*more):
    return folded(
        RunEvents("run-1", PLAN, start=T0).started(0),
        event(PhaseStarted(phase="canary", step="stage1:shift:10", detail="10% to dpl_new"), 1),
        event(TrafficShifted(provider="envoy", canary="dpl_new", weight=10, verified_weight=10), 2),
        event(PhaseStarted(phase="canary", step="stage1:hold", detail="recent for 60s"), 2),
        *more,
    )


def test_view_shows_stage_weight_and_the_time_left_in_the_hold():
    view = stage_one_hold()

    assert (view.phase, view.step, view.stage, view.weight) == ("canary", "stage1:hold", 1, 10)
    shown = text(view, at_s=22)
    assert "stage 1/2 (10%)" in shown and "canary at 10%" in shown
    assert "hold 40s left of 60s" in shown


def test_windows_are_shown_against_the_stage_thresholds_with_the_coordinators_verdict():
    view = stage_one_hold(
        event(window(0, 12.5), 12),
        event(window(1, 512.0, errors=10, count=490), 22),
        event(WindowJudged(step="stage1:hold", probe="recent", index=1, verdict="fail",
                           reason="p95 512 ms > 400 ms over 500 requests", count=500, p95_ms=512.0), 22),
    )

    first, second = view.windows
    assert (first.p95_limit, first.error_limit, first.verdict) == (400.0, 1.0, None)
    assert second.verdict == "fail" and second.error_rate_pct == 2.0
    shown = text(view, at_s=23)
    assert "512.0 / 400" in shown and "2.00% / 1%" in shown
    assert "fail (p95 512 ms > 400 ms over 500 requests)" in shown and "measuring" in shown


def test_a_new_stage_starts_with_no_windows_and_only_the_last_ones_are_kept():
    windows = [event(window(i, 10.0), 3 + i) for i in range(9)]
    view = stage_one_hold(*windows)
    assert [w.index for w in view.windows] == [3, 4, 5, 6, 7, 8]

    view = fold(view, event(PhaseStarted(phase="canary", step="stage2:shift:100", detail=""), 70))
    assert view.windows == () and view.stage == 2


def test_migration_progress_and_pause_show_until_they_change():
    view = stage_one_hold(
        event(MigrationProgress(name="users_email", status="progress", phase="building index", overall_percent=42.0),
              3),
        event(PauseRequested(reason="checking the dashboards", requested_by="maksim"), 4),
    )
    shown = text(view, at_s=5)
    assert "migration users_email: progress building index 42%" in shown
    assert "PAUSED by maksim: checking the dashboards" in shown
    assert "paused by maksim" in shown  # also among the last decisions

    view = fold(view, event(ContinueRequested(requested_by="maksim"), 6))
    assert "PAUSED" not in text(view, at_s=7)


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
    lines: list[str] = []
    terminal = Console(file=io.StringIO(), force_terminal=True, width=160)
    with watching(terminal, False, lambda e: lines.append(e.type)) as echo:
        for e in (event(PhaseStarted(phase="canary", step="stage1:hold", detail=""), 1),
                  event(window(0, 12.5), 2)):
            echo(e)
    assert lines == ["golive.coordinator.phase_started.v1"]
    assert "stage1:hold" in terminal.file.getvalue()
