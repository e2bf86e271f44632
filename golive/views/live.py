"""The live view of a run on a terminal, as `kubectl argo rollouts get rollout --watch` users read one: the health
word, step x of N, the weight set and read back, the stable and canary deployments, the stage's windows against the
plan's limits, the guard values, the index builds, the last things that happened; once the run ended, its end.

The panel renders the run's story (shared/story/: the one fold of a run's events that every output reads); it keeps
only what the story leaves out, the index builds' progress. ``render`` takes the clock, so the time left in a hold
ticks down between events. ``watching`` picks the output: a rich Live panel on a TTY, today's line per event
everywhere else (pipes, CI, tests grep those lines).
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

from golive.shared.envelope import Envelope
from golive.shared.events import MigrationProgress, ProbeWindow
from golive.shared.story import RunStory, WindowStory
from golive.shared.story import fold as fold_story
from golive.views.standing import (
    end_lines,
    guards_line,
    health_line,
    stage_in_focus,
    traffic_line,
    waiting_line,
    windows_line,
)

WINDOWS_SHOWN = 6
MOMENTS_SHOWN = 4


@dataclass(frozen=True)
class Migration:
    """An index build's progress as the migrator reports it (what a run's story does not keep)."""

    name: str
    status: str
    phase: str = ""
    percent: float | None = None


@dataclass(frozen=True)
class LiveView:
    """The run's story, and the index builds in progress while it migrates."""

    story: RunStory = RunStory()
    migrations: tuple[Migration, ...] = ()


def fold(view: LiveView, envelope: Envelope) -> LiveView:
    """The view after one more event of the run."""
    view = replace(view, story=fold_story(view.story, envelope))
    if isinstance(d := envelope.data, MigrationProgress):
        entry = Migration(d.name, d.status, d.phase, d.overall_percent)
        view = replace(view, migrations=(*(m for m in view.migrations if m.name != d.name), entry))
    return view


def render(view: LiveView, now: datetime) -> RenderableType:
    """The panel for ``view`` at ``now``."""
    story = view.story
    header = Text(f"run {story.run_id} · plan {story.plan_name} · deployment {story.deploy_id or '-'}", style="bold")
    parts: list[RenderableType] = [header, health_line(story, now)]
    parts += [line for line in (waiting_line(story), traffic_line(story), windows_line(story), guards_line(story))
              if line is not None]
    if windows := shown_windows(story):
        parts.append(_window_table(windows))
    if story.phase == "migrate" and not story.finished:
        for m in view.migrations:
            pct = f" {m.percent:.0f}%" if m.percent is not None else ""
            parts.append(Text(f"migration {m.name}: {m.status} {m.phase}{pct}".rstrip(), style="dim"))
    parts += end_lines(story)
    if story.timeline:
        parts.append(Text("last events:", style="bold"))
        parts += [Text(f"  {m.at:%H:%M:%S} {m.text}", style="red" if m.failed else "")
                  for m in story.timeline[-MOMENTS_SHOWN:]]
    return Group(*parts)


def shown_windows(story: RunStory) -> tuple[WindowStory, ...]:
    """The windows of the step in flight; once the run failed or ended, only the judged windows of the stage that
    decided it (none measuring: nothing measures any more)."""
    if story.failure is None and not story.finished:
        return story.step_windows[-WINDOWS_SHOWN:]
    stage = stage_in_focus(story)
    return stage.judged_windows[-WINDOWS_SHOWN:] if stage is not None else ()


@contextmanager
def watching(console: Console, as_json: bool, line: Callable[[Envelope], None]) -> Iterator[Callable[[Envelope], None]]:
    """The echo to watch a run with (`golive run`, `demo`, `resume`): ``line`` (one line per event, the output
    scripts and tests read) unless ``console`` is a terminal and not ``--json``: then the lines that matter
    scroll above a live panel that redraws four times a second, and stays on screen once it ends: its last state
    is where the run stood when the watch stopped (the run's end, when it ended)."""
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
              transient=False, redirect_stdout=False, redirect_stderr=False):
        yield echo


def _limit(window: WindowStory, metric: str) -> float | None:
    return next((r.limit for r in window.readings if r.metric == metric), None)


def _against(value: float | None, limit: float | None, shown: str, unit: str = "") -> Text:
    """A window's number against its limit: ``512.0 / 400``, red over it, green under it."""
    if value is None:
        return Text("-", style="dim")
    text = shown + (f" / {limit:g}{unit}" if limit is not None else "")
    return Text(text, style="" if limit is None else "red" if value > limit else "green")


def _window_table(windows: tuple[WindowStory, ...]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("probe", "window", "p95 ms", "errors", "requests", "verdict"):
        table.add_column(column, justify="right" if column in ("window", "p95 ms", "errors", "requests") else "left")
    for w in windows:
        # a guard window's numbers are its gauges (said in the verdict's column), not the latency of its samples
        p95 = _against(None if w.guard else w.p95_ms, _limit(w, "p95_ms"), f"{w.p95_ms or 0:.1f}")
        errors = _against(None if w.guard else w.error_rate_pct, _limit(w, "error_rate_pct"),
                          f"{w.error_rate_pct or 0:.2f}%", "%")
        style = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}.get(w.verdict or "", "dim")
        verdict = Text(w.verdict or "measuring", style=style)
        if w.guard and w.readings:
            verdict.append(f" ({', '.join(r.words() for r in w.readings)})")
        elif w.verdict and w.verdict != "pass" and (why := w.breaches or w.reason):
            verdict.append(f" ({why})")
        # Text, not str: a table renders a str cell as markup, and a probe's name is the plan author's text
        table.add_row(Text(w.probe + (" (guard)" if w.guard else "")), str(w.index), p95, errors,
                      str(w.requests) if not w.guard else "-", verdict)
    return table
