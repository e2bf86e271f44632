"""The live view of a run on a terminal: where it stands, how the last windows measure against their
thresholds, how far the index builds are, and what the coordinator decided last.

The view model is a pure fold of the run's events (``fold``), rendered separately (``render``) with the
clock passed in, so the time left in a hold ticks down between events. ``watching`` picks the output:
a rich Live panel on a TTY, today's line per event everywhere else (pipes, CI, tests grep those lines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from golive.views.lines import OUTCOME_STYLE, describe
from shared.envelope import Envelope
from shared.events import (
    CompensationStarted,
    ContinueRequested,
    MigrationProgress,
    MigrationsApplied,
    PauseRequested,
    PhaseStarted,
    ProbeWindow,
    RetryRequested,
    RunFinished,
    RunStarted,
    TrafficRolledBack,
    TrafficShifted,
    WindowJudged,
)
from shared.judge import error_rate_pct

WINDOWS_SHOWN = 6
DECISIONS_SHOWN = 4
COORDINATOR = "/golive/coordinator"


@dataclass(frozen=True)
class WindowRow:
    """One probe window's numbers, with the coordinator's verdict once it judged it."""

    probe: str
    index: int
    p95_ms: float
    error_rate_pct: float
    requests: int
    p95_limit: float | None = None
    error_limit: float | None = None
    verdict: str | None = None  # pass | fail | inconclusive
    reason: str = ""


@dataclass(frozen=True)
class Migration:
    name: str
    status: str
    phase: str = ""
    percent: float | None = None


@dataclass(frozen=True)
class LiveView:
    run_id: str = ""
    plan: str = ""
    deploy_id: str = ""
    stages: tuple[tuple[int, float, dict[str, tuple[float | None, float | None]]], ...] = ()  # weight, hold, limits
    phase: str = "starting"
    step: str = ""
    stage: int | None = None
    weight: int = 0  # the canary's weight as read back
    hold_started: datetime | None = None
    hold_s: float | None = None
    windows: tuple[WindowRow, ...] = ()
    migrations: tuple[Migration, ...] = ()
    decisions: tuple[str, ...] = ()
    paused_by: str | None = None
    outcome: str | None = None
    outcome_reason: str = ""


def fold(view: LiveView, envelope: Envelope) -> LiveView:
    """The view after one more event of the run."""
    d = envelope.data
    if envelope.source == COORDINATOR and not isinstance(d, WindowJudged):
        decision = f"{envelope.time:%H:%M:%S} {describe(envelope)[1]}"
        view = replace(view, decisions=(*view.decisions, decision)[-DECISIONS_SHOWN:])
    match d:
        case RunStarted():
            return replace(view, run_id=envelope.runid, plan=d.plan_name, deploy_id=d.deploy_id, stages=_stages(d))
        case PhaseStarted():
            stage = d.where.stage
            hold = d.where.kind == "hold"
            return replace(
                view, phase=d.phase, step=d.step, stage=stage if stage is not None else view.stage,
                hold_started=envelope.time if hold else None,
                hold_s=view.stages[stage - 1][1] if hold and stage and stage <= len(view.stages) else None,
                windows=() if stage is not None and stage != view.stage else view.windows,
            )
        case TrafficShifted() | TrafficRolledBack():
            return replace(view, weight=d.verified_weight)
        case ProbeWindow() if d.target == "probe":
            stats = d.stats
            requests = stats.count + stats.errors
            p95_limit, error_limit = _limits(view, d.probe)
            row = WindowRow(d.probe, d.index, stats.p95_ms, error_rate_pct(stats.count, stats.errors), requests,
                            p95_limit, error_limit)
            return replace(view, windows=_upsert(view.windows, row))
        case WindowJudged():
            known = next((w for w in view.windows if (w.probe, w.index) == (d.probe, d.index)), None)
            row = replace(known, verdict=d.verdict, reason=d.reason) if known else WindowRow(
                d.probe, d.index, d.p95_ms or 0.0, d.error_rate_pct or 0.0, d.count, *_limits(view, d.probe),
                verdict=d.verdict, reason=d.reason)
            return replace(view, windows=_upsert(view.windows, row))
        case MigrationProgress():
            entry = Migration(d.name, d.status, d.phase, d.overall_percent)
            return replace(view, migrations=(*(m for m in view.migrations if m.name != d.name), entry))
        case MigrationsApplied():
            done = {r.name: Migration(r.name, r.action, "", 100.0) for r in d.results}
            return replace(view, migrations=(*(m for m in view.migrations if m.name not in done), *done.values()))
        case CompensationStarted():
            return replace(view, phase="rollback", step=d.step, hold_started=None, hold_s=None)
        case PauseRequested():
            return replace(view, paused_by=f"{d.requested_by}: {d.reason}")
        case ContinueRequested():
            return replace(view, paused_by=None)
        case RetryRequested():
            return replace(view, outcome=None, outcome_reason="")
        case RunFinished():
            return replace(view, outcome=d.outcome, outcome_reason=d.reason, hold_started=None, hold_s=None)
    return view


def render(view: LiveView, now: datetime) -> RenderableType:
    """The panel for ``view`` at ``now``."""
    parts: list[RenderableType] = [
        Text(f"run {view.run_id} · plan {view.plan} · deployment {view.deploy_id}", style="bold"),
    ]
    where = Text(f"phase {view.phase} · {view.step or 'starting'}")
    if view.stage is not None and view.stage <= len(view.stages):
        where.append(f" · stage {view.stage}/{len(view.stages)} ({view.stages[view.stage - 1][0]}%)")
    where.append(f" · canary at {view.weight}%")
    if view.hold_started is not None and view.hold_s is not None:
        left = max(0.0, view.hold_s - (now - view.hold_started).total_seconds())
        where.append(f" · hold {left:.0f}s left of {view.hold_s:g}s", style="cyan")
    parts.append(where)
    if view.paused_by:
        parts.append(Text(f"PAUSED by {view.paused_by}: `golive continue {view.run_id}`", style="bold yellow"))
    if view.windows:
        parts.append(_window_table(view.windows))
    for m in view.migrations:
        pct = f" {m.percent:.0f}%" if m.percent is not None else ""
        parts.append(Text(f"migration {m.name}: {m.status} {m.phase}{pct}".rstrip(), style="dim"))
    if view.decisions:
        parts.append(Text("last decisions:", style="bold"))
        parts.extend(Text(f"  {line}") for line in view.decisions)
    if view.outcome:
        parts.append(Text(f"run {view.outcome}: {view.outcome_reason}", style=OUTCOME_STYLE.get(view.outcome, "bold")))
    return Group(*parts)


@contextmanager
def watching(console: Console, as_json: bool, line: Callable[[Envelope], None]) -> Iterator[Callable[[Envelope], None]]:
    """The echo to watch a run with (`golive run`, `demo`, `resume`): ``line`` (one line per event, the output
    scripts and tests read) unless ``console`` is a terminal and not ``--json``: then the lines that matter
    scroll above a live panel that redraws four times a second."""
    if as_json or not console.is_terminal:
        yield line
        return
    view = LiveView()

    def echo(envelope: Envelope) -> None:
        nonlocal view
        view = fold(view, envelope)
        if not isinstance(envelope.data, (ProbeWindow, MigrationProgress)):
            line(envelope)  # printed above the panel: the run's history stays in the scrollback

    with Live(console=console, get_renderable=lambda: render(view, datetime.now(UTC)), refresh_per_second=4,
              transient=True, redirect_stdout=False, redirect_stderr=False):
        yield echo


# --- the fold's helpers ------------------------------------------------------------------------


def _stages(started: RunStarted) -> tuple[tuple[int, float, dict[str, tuple[float | None, float | None]]], ...]:
    from shared.plan import plan_of

    stages = []
    for stage in plan_of(started).canary.stages:
        limits = {c.probe: (c.thresholds.p95_ms, c.thresholds.error_rate_pct) for c in stage.checks}
        stages.append((stage.weight, float(stage.hold), limits))
    return tuple(stages)


def _limits(view: LiveView, probe: str) -> tuple[float | None, float | None]:
    if view.stage is None or view.stage > len(view.stages):
        return None, None
    return view.stages[view.stage - 1][2].get(probe, (None, None))


def _upsert(windows: tuple[WindowRow, ...], row: WindowRow) -> tuple[WindowRow, ...]:
    kept = [w for w in windows if (w.probe, w.index) != (row.probe, row.index)]
    return (*kept, row)[-WINDOWS_SHOWN:]


def _window_table(windows: tuple[WindowRow, ...]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("probe", "window", "p95 ms", "errors", "requests", "verdict"):
        table.add_column(column, justify="right" if column in ("window", "p95 ms", "errors", "requests") else "left")
    for w in windows:
        over_p95 = w.p95_limit is not None and w.p95_ms > w.p95_limit
        over_errors = w.error_limit is not None and w.error_rate_pct > w.error_limit
        p95 = Text(f"{w.p95_ms:.1f}" + (f" / {w.p95_limit:g}" if w.p95_limit is not None else ""),
                   style="red" if over_p95 else "green" if w.p95_limit is not None else "")
        errors = Text(f"{w.error_rate_pct:.2f}%" + (f" / {w.error_limit:g}%" if w.error_limit is not None else ""),
                      style="red" if over_errors else "green" if w.error_limit is not None else "")
        style = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}.get(w.verdict or "", "dim")
        verdict = Text(w.verdict or "measuring", style=style)
        if w.verdict and w.verdict != "pass" and w.reason:
            verdict.append(f" ({w.reason})")
        # Text, not str: a table renders a str cell as markup, and a probe's name is the plan author's text
        table.add_row(Text(w.probe), str(w.index), p95, errors, str(w.requests), verdict)
    return table
