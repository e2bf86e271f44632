"""The deployment chart: what was judged during a run, over time, on the run's phases.

``chart_data(events)`` is pure (what to draw, folded from one run's events); ``render_chart(data)`` draws it with
matplotlib's Agg backend into PNG bytes (no display, no pyplot state, so it is safe in a service).

What the chart shows is what decided the run, nothing the run did not judge:

- each canary window the coordinator judged (window_judged), at the moment it was judged, with its verdict; a window
  too thin to judge (inconclusive) shows what the prober measured in it, hollow, and never sets the axis: a probe's
  own backlog is not the canary's latency;
- each check the prober judged on its totals (a preflight, smoke or final-validation check; a stage's hold when no
  window of it was judged, or when its totals failed it), as a bar over the time it ran; totals of probes stopped
  by a rollback were never judged and are left out;
- a metric of a window or check only where a limit held it (a p95 where the check had a p95 limit);
- each stage's limits, per check, over that stage's span; a check's limits over the check;
- the guard's windows (replica lag, WAL lag, connection use: no latency to plot) as a strip of verdicts;
- the run's phases as bands (preflight, migrate, smoke, stage 1 · 10%, ..., rollback), each stage's verdict.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from shared.envelope import Envelope
from shared.events import (
    CompensationStarted,
    Finding,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    StepRef,
    TrafficShifted,
    WindowJudged,
)
from shared.judge import error_rate_pct
from shared.plan import Plan, plan_of
from shared.plan.checks import Thresholds
from shared.plan.probes import HttpProbe
from shared.story import story_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Metric = Literal["p95_ms", "error_rate_pct"]
METRICS: tuple[Metric, ...] = ("p95_ms", "error_rate_pct")
HEADROOM = 1.25  # an axis ends a quarter above the highest number it must show


@dataclass(frozen=True)
class Reading:
    """One number of a window or check, and its own verdict against its limit (inconclusive: not judged)."""

    value: float
    verdict: Finding


@dataclass(frozen=True)
class Point:
    """One judged window or check of a probe: judged at ``at_s`` on what it measured since ``from_s`` (seconds since
    the run started), its verdict, and its numbers held to a limit."""

    at_s: float
    from_s: float
    kind: Literal["window", "check"]
    verdict: Finding
    requests: int
    stage: int | None
    p95_ms: Reading | None = None
    error_rate_pct: Reading | None = None

    def reading(self, metric: Metric) -> Reading | None:
        return self.p95_ms if metric == "p95_ms" else self.error_rate_pct


@dataclass(frozen=True)
class Series:
    """A probe's judged points, named for what it measures: the canary itself, production (the alias both
    deployments answer behind), the database, or the database guard."""

    probe: str
    target: str
    points: tuple[Point, ...]

    @property
    def name(self) -> str:
        return f"{self.probe} ({self.target})"


@dataclass(frozen=True)
class Threshold:
    """A check's limit over the span it held: a stage's (``stage``) over the stage, a single check's over the check."""

    metric: Metric
    value: float
    from_s: float
    to_s: float
    probe: str
    stage: int | None = None


@dataclass(frozen=True)
class PhaseBand:
    """A phase of the run (each canary stage its own) from its first step to the next phase; ``verdict`` pass when
    it completed, fail when the run failed in it, None for the rollback and a phase still running."""

    label: str
    kind: str
    from_s: float
    to_s: float
    verdict: Literal["pass", "fail"] | None


@dataclass(frozen=True)
class ChartData:
    title: str
    outcome: str = ""  # the run's (RunFinished), "" while it runs
    reason: str = ""
    series: tuple[Series, ...] = ()
    guards: tuple[Series, ...] = ()  # gauge verdicts: no latency or error rate to plot
    thresholds: tuple[Threshold, ...] = ()
    phases: tuple[PhaseBand, ...] = ()
    failed_s: float | None = None  # when the step that failed the run failed
    rollback_s: float | None = None  # when the compensations began
    end_s: float = 0.0
    p95_axis: tuple[float, float] = (0.0, 1.0)
    error_axis: tuple[float, float] = (0.0, 1.0)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in (*self.series, *self.guards))

    def clipped(self, metric: Metric = "p95_ms") -> list[tuple[Series, Point]]:
        """Points whose ``metric`` is above its axis: drawn at the top edge with their number."""
        top = (self.p95_axis if metric == "p95_ms" else self.error_axis)[1]
        return [(s, p) for s in self.series for p in s.points if (r := p.reading(metric)) and r.value > top]


def chart_data(events: list[Envelope]) -> ChartData:
    """What the chart shows, from one run's events in stream order (those after its run_finished are not the run's)."""
    started = next((e for e in events if isinstance(e.data, RunStarted)), None)
    if started is None:
        raise ValueError("no run_started event: not a run's events")
    run = _Fold(started)
    for n, e in enumerate(events):
        run.add(e)
        if isinstance(e.data, RunFinished):
            events = events[:n + 1]
            break
    data = run.chart()
    # the headline says what the report's pill says: the run's story words the reason once, with its numbers
    return replace(data, reason=story_of(events).reason or data.reason) if data.outcome else data


@dataclass
class _Band:
    """A phase band while the fold is in it (``to_s`` None: still in it)."""

    label: str
    kind: str
    stage: int | None
    from_s: float
    to_s: float | None = None
    verdict: Literal["pass", "fail"] | None = None


class _Fold:
    """A run's events, read in order into what the chart draws."""

    def __init__(self, started: Envelope) -> None:
        assert isinstance(started.data, RunStarted)
        self.t0, self.run, self.run_id = started.time, started.data, started.runid
        self.plan: Plan = plan_of(started.data)
        self.end_s = 0.0
        self.outcome = self.reason = ""
        self.step: tuple[float, StepRef] | None = None  # the step running, since when
        self.bands: list[_Band] = []
        self.measured: dict[tuple[str, int], ProbeWindow] = {}  # the last window of each (probe, index)
        self.points: dict[str, list[Point]] = {}
        self.check_limits: list[Threshold] = []
        self.stage_verdicts: dict[int, Literal["pass", "fail"]] = {}
        self.failed_s: float | None = None
        self.rollback_s: float | None = None
        self.shifted = False

    def at(self, e: Envelope) -> float:
        return max(0.0, (e.time - self.t0).total_seconds())

    def add(self, e: Envelope) -> None:
        now, data = self.at(e), e.data
        self.end_s = max(self.end_s, now)
        match data:
            case PhaseStarted() if not data.where.undoing and data.phase != "compensating":
                self.step = (now, data.where)
                self._enter(now, data.where)
            case ProbeWindow() if data.target == "probe":
                self.measured[(data.probe, data.index)] = data
            case WindowJudged():
                self._window(now, data)
            case ProbeCompleted() | ProbesCompleted() if data.stopped is None and self.step is not None:
                self._check(now, data)
            case StepFailed() if self.failed_s is None and not data.where.undoing:
                self.failed_s, self.reason = now, data.reason
                self._close(now, "fail")
            case CompensationStarted() if self.rollback_s is None:
                self.rollback_s = now
                self._close(now, "fail" if self.failed_s is None else None)
                # traffic moved: it goes back; else only what the run changed before is undone
                self.bands.append(_Band("rollback" if self.shifted else "undo", "rollback", None, now))
            case StageJudged():
                self.stage_verdicts[data.stage] = data.verdict
            case TrafficShifted() if data.verified_weight > 0:
                self.shifted = True
            case RunFinished():
                self.outcome, self.reason = data.outcome, data.reason or self.reason

    # --- the phases ---

    def _enter(self, now: float, where: StepRef) -> None:
        kind, stage = where.phase or "other", where.stage if where.phase == "canary" else None
        if self.bands and (self.bands[-1].kind, self.bands[-1].stage) == (kind, stage):
            return
        self._close(now, "pass")
        self.bands.append(_Band(self._label(kind, stage), kind, stage, now))

    def _close(self, now: float, verdict: Literal["pass", "fail"] | None) -> None:
        if self.bands and self.bands[-1].to_s is None and self.bands[-1].kind != "rollback":
            self.bands[-1].to_s, self.bands[-1].verdict = now, verdict

    def _label(self, kind: str, stage: int | None) -> str:
        if stage is not None and 0 < stage <= len(self.plan.canary.stages):
            return f"stage {stage} · {self.plan.canary.stages[stage - 1].weight}%"
        return {"final_validation": "final validation", "lock_in": "lock-in"}.get(kind, kind)

    # --- what was judged ---

    def _window(self, now: float, judged: WindowJudged) -> None:
        stage = judged.where.stage
        measured = self.measured.get((judged.probe, judged.index))
        from_s = now - measured.seconds if measured is not None else now
        if judged.guard:
            self._point(judged.probe, Point(now, from_s, "window", judged.verdict, judged.count, stage))
            return
        limits = self._stage_limits(stage, judged.probe)
        if judged.verdict == "inconclusive":  # nothing judged: what the prober measured, for what it is worth
            stats = measured.stats if measured is not None else None
            shown: dict[Metric, float | None] = {
                "p95_ms": stats.p95_ms if stats and stats.count else None,
                "error_rate_pct": error_rate_pct(stats.count, stats.errors) if stats and stats.count + stats.errors else None,
            }
        else:
            shown = {"p95_ms": judged.p95_ms, "error_rate_pct": judged.error_rate_pct}
        held: dict[Metric, float | None] = {m: getattr(limits, m) if limits else None for m in METRICS}
        readings = _readings(judged.verdict, shown, held, every=limits is None)
        self._point(judged.probe, Point(now, from_s, "window", judged.verdict, judged.count, stage, **readings))

    def _check(self, now: float, answer: ProbeCompleted | ProbesCompleted) -> None:
        assert self.step is not None
        since, where = self.step
        results = answer.results if isinstance(answer, ProbesCompleted) else [answer]
        for result in results:
            windows = any(p.kind == "window" and p.stage == where.stage for p in self.points.get(result.probe, []))
            if where.kind == "hold" and windows and result.finding == "pass":
                continue  # its windows show it
            limits = {v.metric: v.limit for v in result.verdicts}
            shown: dict[Metric, float | None] = {
                "p95_ms": result.p95_ms if result.count else None,
                "error_rate_pct": error_rate_pct(result.count, result.errors) if result.count + result.errors else None,
            }
            held: dict[Metric, float | None] = {m: limits.get(m) for m in METRICS}
            readings = _readings(result.finding, shown, held, failed={v.metric for v in result.verdicts if not v.passed})
            self._point(result.probe, Point(now, since, "check", result.finding, result.count + result.errors,
                                            where.stage, **readings))
            if where.phase != "canary":  # a stage's limits are drawn over the stage
                self.check_limits += [Threshold(m, v, since, now, result.probe) for m, v in held.items() if v is not None]

    def _point(self, probe: str, point: Point) -> None:
        self.points.setdefault(probe, []).append(point)

    def _stage_limits(self, stage: int | None, probe: str) -> Thresholds | None:
        if stage is None or not 0 < stage <= len(self.plan.canary.stages):
            return None
        return next((c.thresholds for c in self.plan.canary.stages[stage - 1].checks if c.probe == probe), None)

    # --- the chart ---

    def chart(self) -> ChartData:
        end_s = self.end_s
        if self.bands and self.bands[-1].to_s is None:
            last = self.bands[-1]
            last.to_s = end_s
            if last.kind != "rollback" and self.outcome == "succeeded":
                last.verdict = "pass"
        for band in self.bands:
            if band.stage is not None and band.stage in self.stage_verdicts:
                band.verdict = self.stage_verdicts[band.stage]
        phases = tuple(PhaseBand(b.label, b.kind, b.from_s, b.to_s if b.to_s is not None else end_s, b.verdict)
                       for b in self.bands)
        plotted, guards = [], []
        for probe, points in self.points.items():
            if any(p.p95_ms or p.error_rate_pct for p in points):
                plotted.append(Series(probe, self._target(probe), tuple(points)))
            else:
                guarded = self.plan.guards is not None and self.plan.guards.probe == probe
                guards.append(Series(probe, "database guard" if guarded else "database", tuple(points)))
        thresholds = (*self._stage_thresholds(), *self.check_limits)
        run = self.run
        title = f"{run.plan_name}: {run.deploy_id} replacing {run.previous_deploy_id or 'the previous deployment'} · {self.run_id}"
        return ChartData(
            title=title, outcome=self.outcome, reason=self.reason, series=tuple(plotted), guards=tuple(guards),
            thresholds=thresholds, phases=phases, failed_s=self.failed_s, rollback_s=self.rollback_s, end_s=end_s,
            p95_axis=_axis(plotted, thresholds, "p95_ms", floor=10.0),
            error_axis=_axis(plotted, thresholds, "error_rate_pct", floor=1.0, ceiling=105.0),
        )

    def _stage_thresholds(self) -> Iterator[Threshold]:
        for band in self.bands:
            if band.stage is None or band.to_s is None or not 0 < band.stage <= len(self.plan.canary.stages):
                continue
            for check in self.plan.canary.stages[band.stage - 1].checks:
                for metric in METRICS:
                    if (value := getattr(check.thresholds, metric)) is not None:
                        yield Threshold(metric, value, band.from_s, band.to_s, check.probe, band.stage)

    def _target(self, probe: str) -> str:
        spec = self.plan.probes.get(probe)
        if isinstance(spec, HttpProbe):
            deploy = self.run.deploy_id
            # a url filled per deployment reaches the new one itself; any other, production as users reach it
            return ("canary" if deploy == "canary" else f"canary {deploy}") if spec.aims_at_deployment() else "production"
        return "database"


def _readings(verdict: Finding, shown: dict[Metric, float | None], held: dict[Metric, float | None],
              every: bool = False, failed: set[str] | None = None) -> dict[str, Reading]:
    """The numbers of a window or check held to a limit (``every``: all of them, no limit being known), each with its
    own verdict: over its limit (or named in ``failed``) fails; a failed verdict that no shown number explains
    (a p99 or a comparison failed it) marks them all; inconclusive marks them all."""
    present = {m: v for m, v in shown.items() if v is not None and (every or held[m] is not None)}
    over = {m for m, v in present.items() if (limit := held[m]) is not None and v > limit} | (failed or set())
    readings: dict[str, Reading] = {}
    for metric, value in present.items():
        if verdict == "inconclusive":
            mine: Finding = "inconclusive"
        elif metric in over or (verdict == "fail" and not over & set(present)):
            mine = "fail"
        else:
            mine = "pass"
        readings[metric] = Reading(value, mine)
    return readings


def _axis(series: list[Series], thresholds: tuple[Threshold, ...], metric: Metric, floor: float,
          ceiling: float | None = None) -> tuple[float, float]:
    """From 0 to a quarter above the highest judged number or limit: a number not judged (inconclusive) never
    stretches it (it is clipped and marked); with nothing judged and no limit, the numbers measured set it."""
    readings = [r for s in series for p in s.points if (r := p.reading(metric))]
    basis = [r.value for r in readings if r.verdict != "inconclusive"] + [t.value for t in thresholds if t.metric == metric]
    top = max(basis or [r.value for r in readings] or [0.0]) * HEADROOM or floor
    return 0.0, min(top, ceiling) if ceiling else top


# --- drawing (the only part that needs matplotlib) ---------------------------------------------

_PALETTE = ("#1c7ed6", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#f08c00", "#5c940d", "#862e9c", "#495057")
_RED, _GREY = "#c92a2a", "#868e96"
_BANDS = {"preflight": "#f1f3f5", "migrate": "#e5dbff", "smoke": "#e7f5ff", "final_validation": "#e3fafc",
          "lock_in": "#f3f0ff", "rollback": "#ffc9c9"}
_STAGE = {"pass": "#ebfbee", "fail": "#ffe3e3", None: "#fff9db"}
_OUTCOME = {"succeeded": ("SUCCEEDED", "#2b8a3e"), "rolled_back": ("ROLLED BACK", _RED),
            "needs_human": ("NEEDS HUMAN", _RED), "": ("RUNNING", "#495057")}
# a verdict's marker: passed filled, failed a large cross edged in red, inconclusive hollow (not judged)
_LOOK: dict[Finding, dict[str, Any]] = {
    "pass": dict(marker="o", ms=5),
    "fail": dict(marker="X", ms=10, mec=_RED, mew=1.2),
    "inconclusive": dict(marker="o", ms=6, mfc="none", mew=1.2),
}


def render_chart(data: ChartData) -> bytes:
    """The chart as PNG bytes (about 1100x720 px). A run without measurements gets a chart saying so."""
    # imported here: only the report needs matplotlib, and its import is not free
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(11, 7.2 if data.guards else 6.6), dpi=100)  # fixed margins: no layout engine pass
    ratios = (3.0, 2.0, 0.35 * len(data.guards)) if data.guards else (3.0, 2.0)
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios, gridspec_kw={
        "left": 0.07, "right": 0.77, "top": 0.82, "bottom": 0.08, "hspace": 0.1})
    p95_ax, err_ax = axes[0], axes[1]
    words, colour = _OUTCOME.get(data.outcome, (data.outcome.upper(), "#495057"))
    fig.text(0.07, 0.975, data.title, fontsize=11, ha="left", va="top")
    headline = textwrap.wrap(f"{words}: {data.reason}" if data.reason else words, 125, max_lines=2, placeholder=" …")
    fig.text(0.07, 0.94, "\n".join(headline), fontsize=9, ha="left", va="top", color=colour, fontweight="bold",
             linespacing=1.3)
    scale, unit = (60.0, "min") if data.end_s >= 180 else (1.0, "s")
    colours = {s.probe: _PALETTE[i % len(_PALETTE)] for i, s in enumerate((*data.series, *data.guards))}

    for ax in axes:
        for band in data.phases:
            look = _BANDS.get(band.kind, "#f8f9fa") if band.kind != "canary" else _STAGE[band.verdict]
            ax.axvspan(band.from_s / scale, max(band.to_s, band.from_s + data.end_s / 400) / scale, color=look,
                       zorder=0, hatch="///" if band.kind == "rollback" else None, ec="#ffa8a8" if band.kind == "rollback" else None,
                       lw=0)
        if data.failed_s is not None:
            ax.axvline(data.failed_s / scale, color=_RED, linewidth=1.8, zorder=3)
        ax.grid(True, alpha=0.3, zorder=1)
        ax.set_xlim(0, max(data.end_s / scale, 1e-3) * 1.02)
    _band_labels(p95_ax, data, scale)

    panels: tuple[tuple[Axes, Metric, tuple[float, float]], ...] = (
        (p95_ax, "p95_ms", data.p95_axis), (err_ax, "error_rate_pct", data.error_axis))
    for ax, metric, (low, high) in panels:
        _limits(ax, data.thresholds, metric, colours, scale)
        for series in data.series:
            _series(ax, series, metric, colours[series.probe], high, scale)
        ax.set_ylim(low, high)
    p95_ax.set_ylabel("p95 (ms)")
    err_ax.set_ylabel("error rate")
    err_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    if data.guards:
        guard_ax = axes[2]
        for row, series in enumerate(data.guards):
            for p in series.points:
                guard_ax.plot([p.at_s / scale], [row], color=colours[series.probe], ls="none", clip_on=False,
                              zorder=4, **_LOOK[p.verdict])
        guard_ax.set_ylim(-0.6, len(data.guards) - 0.4)
        guard_ax.set_yticks(range(len(data.guards)), [s.name for s in data.guards], fontsize=8)
        guard_ax.yaxis.tick_right()
    axes[-1].set_xlabel(f"time since the run started ({unit})")

    if data.empty:
        p95_ax.text(0.5, 0.5, "no measurements in this run", transform=p95_ax.transAxes, ha="center", va="center",
                    color=_GREY)
    probes = [Line2D([], [], color=colours[s.probe], lw=1.5, marker="o", ms=5, label=s.name) for s in data.series]
    if probes:
        p95_ax.legend(handles=probes, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                      title="judged (what it measures)", title_fontsize=8, alignment="left")
    verdicts: tuple[tuple[Finding, str], ...] = (("pass", "passed"), ("fail", "failed"), ("inconclusive", "inconclusive: not judged"))
    key = [Line2D([], [], color=_GREY, ls="none", label=words, **_LOOK[v]) for v, words in verdicts]
    key += [Line2D([], [], color=_GREY, ls="none", marker="^", mfc="none", ms=7, label="above the axis: value"),
            Line2D([], [], color=_GREY, lw=3, alpha=0.5, label="check: totals over its run"),
            Line2D([], [], color=_GREY, ls=(0, (1, 1.2)), lw=1.8, label="limit (grey: shared)")]
    if data.failed_s is not None:
        key.append(Line2D([], [], color=_RED, lw=1.8, label="run failed"))
    err_ax.legend(handles=key, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _series(ax: Axes, series: Series, metric: Metric, colour: str, top: float, scale: float) -> None:
    """One probe's points on one panel: judged windows of a stage joined by a thin line, a check as a bar over the
    time it ran, each point marked by its verdict; a number above the axis at the top edge with its value (the values
    of a run of such points are written where they do not run into each other). One artist per kind of mark: a
    day-long run has thousands of windows."""
    joined: dict[int | None, list[tuple[float, float]]] = {}
    bars: list[tuple[float, float, float]] = []
    marks: dict[Finding, list[tuple[float, float]]] = {}
    above: list[tuple[float, float]] = []  # (x, value)
    for p in series.points:
        reading = p.reading(metric)
        if reading is None:
            continue
        x, y = p.at_s / scale, min(reading.value, top)
        if p.kind == "check":
            bars.append((y, p.from_s / scale, x))
        elif reading.verdict != "inconclusive":
            joined.setdefault(p.stage, []).append((x, y))
        if reading.value > top:
            above.append((x, reading.value))
        else:
            marks.setdefault(reading.verdict, []).append((x, y))
    if bars:
        ax.hlines([y for y, _, _ in bars], [a for _, a, _ in bars], [b for _, _, b in bars], colors=colour, lw=3,
                  alpha=0.45, zorder=3)
    for line in joined.values():
        ax.plot([x for x, _ in line], [y for _, y in line], color=colour, lw=1, alpha=0.7, zorder=3)
    for verdict, xy in marks.items():
        ax.plot([x for x, _ in xy], [y for _, y in xy], color=colour, ls="none", clip_on=False, zorder=4,
                **_LOOK[verdict])
    if above:
        ax.plot([x for x, _ in above], [top] * len(above), color=colour, ls="none", marker="^", mfc="none", ms=7,
                mew=1.2, clip_on=False, zorder=5)
        room = ax.get_xlim()[1] * 0.04  # about 30 px: room for "12,345"
        last = float("-inf")
        for x, value in above:
            if x - last >= room:
                ax.annotate(f"{value:,.0f}", (x, top), textcoords="offset points", xytext=(0, -5), ha="center",
                            va="top", fontsize=7, color=colour, zorder=5)
                last = x


def _limits(ax: Axes, thresholds: tuple[Threshold, ...], metric: Metric, colours: dict[str, str], scale: float) -> None:
    """Each limit over its span, in its probe's colour (grey where several probes share it), stepping at each stage."""
    spans: dict[tuple[float, float, float], set[str]] = {}
    for t in thresholds:
        if t.metric == metric:
            spans.setdefault((t.value, t.from_s, t.to_s), set()).add(t.probe)
    for (value, from_s, to_s), probes in spans.items():
        colour = colours.get(next(iter(probes)), _GREY) if len(probes) == 1 else "#495057"
        ax.hlines(value, from_s / scale, to_s / scale, colors=colour, linestyles=(0, (1, 1.2)), linewidth=1.8, zorder=2)
    by_probe: dict[str, list[Threshold]] = {}
    for t in thresholds:
        if t.metric == metric and t.stage is not None:
            by_probe.setdefault(t.probe, []).append(t)
    for probe, steps in by_probe.items():  # the step from one stage's limit to the next
        for before, after in zip(steps, steps[1:], strict=False):
            if before.to_s == after.from_s and before.value != after.value:
                ax.vlines(after.from_s / scale, before.value, after.value, colors=colours.get(probe, _GREY),
                          linestyles=(0, (1, 1.2)), linewidth=1.2, zorder=2)


def _band_labels(ax: Axes, data: ChartData, scale: float) -> None:
    """Each phase named above the panel, centred on its band; a label that would run into the one before it goes
    on a second row (a migration of half a second has a band too narrow for its name)."""
    width = max(data.end_s / scale, 1e-3) * 1.02
    ends = [float("-inf"), float("-inf")]  # where the last label of each row ends, in axes fractions
    for band in data.phases:
        mark = {"pass": " ✓", "fail": " ✗"}.get(band.verdict or "", "") if band.kind == "canary" else ""
        text = band.label + mark
        middle = (band.from_s + band.to_s) / 2 / scale / width
        half = 0.0055 * len(text)  # about 6 px a character at 8 pt on an axis 770 px wide
        row = 0 if middle - half > ends[0] else 1
        ends[row] = middle + half
        ax.annotate(text, (middle, 1.0), xycoords="axes fraction", textcoords="offset points",
                    xytext=(0, 7 + 11 * row), ha="center", va="bottom", fontsize=8, annotation_clip=False,
                    color=_RED if band.verdict == "fail" or band.kind == "rollback" else "#495057")


