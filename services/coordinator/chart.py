"""The deployment chart: what was judged during a run, over time, on the run's phases.

``chart_data(events)`` is pure (what to draw, folded from one run's events); ``render_chart(data)``
(services/coordinator/chart_drawing.py) draws it with matplotlib into PNG bytes.

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

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

from golive.shared.envelope import Envelope
from golive.shared.events import (
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
from golive.shared.judge import error_rate_pct
from golive.shared.plan import Plan, plan_of
from golive.shared.plan.checks import Thresholds
from golive.shared.plan.probes import HttpProbe
from golive.shared.story import story_of

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
