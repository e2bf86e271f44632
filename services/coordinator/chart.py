"""The deployment chart: p95 and error rate over time per deployment, with stage boundaries, thresholds and
the rollback moment, drawn from a run's events.

``chart_data(events)`` is pure (the numbers to draw); ``render_chart(data)`` draws them with matplotlib's Agg
backend into PNG bytes (no display, no pyplot state, so it is safe in a service). The series come from
``probe_window`` events (target ``probe`` = the canary, ``baseline`` = stable); a run whose checks publish no
windows is drawn from its probe results instead, one point per check, so every run gets a chart.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from shared.envelope import Envelope
from shared.events import (
    CompensationStarted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    RunStarted,
    StepFailed,
    TrafficRolledBack,
    TrafficShifted,
)
from shared.judge import error_rate_pct
from shared.plan import plan_of
from shared.plan.canary import Stage


@dataclass(frozen=True)
class Point:
    at_s: float  # seconds since the run started
    p95_ms: float
    error_rate_pct: float
    requests: int


@dataclass(frozen=True)
class Series:
    """One line: a probe against one deployment (``canary`` or ``stable``)."""

    probe: str
    deployment: str
    points: tuple[Point, ...]

    @property
    def name(self) -> str:
        return f"{self.probe} ({self.deployment})"


@dataclass(frozen=True)
class Threshold:
    """A stage check's limit, drawn over the span of its stage."""

    metric: str  # p95_ms | error_rate_pct
    value: float
    from_s: float
    to_s: float


@dataclass(frozen=True)
class ChartData:
    title: str
    series: tuple[Series, ...] = ()
    stages: tuple[tuple[float, int], ...] = ()  # (seconds since start, canary weight) per traffic shift
    thresholds: tuple[Threshold, ...] = ()
    rollback_s: float | None = None
    rollback_reason: str = ""
    end_s: float = 0.0
    source: str = "windows"  # windows | results (no windows: one point per check result)
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


def chart_data(events: list[Envelope]) -> ChartData:
    """What the chart shows, from one run's events in stream order."""
    started = next((e for e in events if isinstance(e.data, RunStarted)), None)
    if started is None:
        raise ValueError("no run_started event: not a run's events")
    t0 = started.time
    deploy = {"probe": started.data.deploy_id, "baseline": started.data.previous_deploy_id or "stable"}

    def at(e: Envelope) -> float:
        return max(0.0, (e.time - t0).total_seconds())

    lines: dict[tuple[str, str], list[Point]] = {}
    for e in events:
        if isinstance(e.data, ProbeWindow):
            s = e.data.stats
            lines.setdefault((e.data.probe, deploy[e.data.target]), []).append(
                Point(at(e), s.p95_ms, error_rate_pct(s.count, s.errors), s.count + s.errors))
    source = "windows"
    if not lines:
        source = "results"
        for e in events:
            for r in _results(e):
                lines.setdefault((r.probe, deploy["probe"]), []).append(
                    Point(at(e), r.p95_ms, error_rate_pct(r.count, r.errors), r.count + r.errors))
                if r.baseline is not None:
                    b = r.baseline
                    lines.setdefault((r.probe, deploy["baseline"]), []).append(
                        Point(at(e), b.p95_ms, error_rate_pct(b.count, b.errors), b.count + b.errors))

    stages = tuple((at(e), e.data.verified_weight) for e in events if isinstance(e.data, TrafficShifted))
    rollback = next((e for e in events if isinstance(e.data, (StepFailed, CompensationStarted, TrafficRolledBack))), None)
    end_s = at(events[-1])
    return ChartData(
        title=f"{started.data.plan_name}: {deploy['probe']} vs {deploy['baseline']} ({started.runid})",
        series=tuple(Series(probe, dep, tuple(points)) for (probe, dep), points in lines.items()),
        stages=stages,
        # a stage's limits stop applying when the rollback starts
        thresholds=_thresholds(plan_of(started.data).canary.stages, stages, at(rollback) if rollback else end_s),
        rollback_s=at(rollback) if rollback else None,
        rollback_reason=rollback.data.reason if rollback and isinstance(rollback.data, StepFailed) else "",
        end_s=end_s,
        source=source,
    )


def _results(e: Envelope) -> list[ProbeCompleted]:
    if isinstance(e.data, ProbeCompleted):
        return [e.data]
    if isinstance(e.data, ProbesCompleted):
        return list(e.data.results)
    return []


def _thresholds(spec: list[Stage], stages: tuple[tuple[float, int], ...], end_s: float) -> tuple[Threshold, ...]:
    """Each canary stage's strictest p95 and error-rate limits over the time its weight was applied."""
    out: list[Threshold] = []
    for i, (from_s, _weight) in enumerate(stages[: len(spec)]):
        to_s = stages[i + 1][0] if i + 1 < len(stages) else end_s
        limits = [check.thresholds for check in spec[i].checks]
        for metric in ("p95_ms", "error_rate_pct"):
            values = [v for lim in limits if (v := getattr(lim, metric)) is not None]
            if values:
                out.append(Threshold(metric, min(values), from_s, to_s))
    return tuple(out)


# --- drawing (the only part that needs matplotlib) ---------------------------------------------

_PALETTE = ("#d9480f", "#2b8a3e", "#ae3ec9", "#f08c00", "#0c8599", "#5c940d")
_STABLE = "#1c7ed6"


def render_chart(data: ChartData) -> bytes:
    """The chart as PNG bytes (about 1000x640 px). A run without measurements gets a chart saying so."""
    # imported here: only the report needs matplotlib, and its import is not free
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6.4), dpi=100)  # fixed margins: a layout engine would draw everything twice
    p95_ax, err_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2),
                                  gridspec_kw={"left": 0.07, "right": 0.98, "top": 0.9, "bottom": 0.08, "hspace": 0.08})
    fig.suptitle(data.title, fontsize=11)
    minutes = data.end_s >= 180
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    canary_dep = data.series[0].deployment if data.series else "canary"
    probes = list(dict.fromkeys(s.probe for s in data.series))
    for series in data.series:
        # the canary solid, stable dashed; one colour per probe, or per deployment when there is one probe
        xs = [p.at_s / scale for p in series.points]
        canary = series.deployment == canary_dep
        color = _PALETTE[probes.index(series.probe) % len(_PALETTE)] if len(probes) > 1 or canary else _STABLE
        look = dict(color=color, linestyle="-" if canary else "--",
                    alpha=1.0 if canary else 0.6, marker="o" if data.source == "results" or len(xs) < 30 else None,
                    ms=4, label=series.name)
        p95_ax.plot(xs, [p.p95_ms for p in series.points], **look)
        err_ax.plot(xs, [p.error_rate_pct for p in series.points], **look)
    for ax, metric in ((p95_ax, "p95_ms"), (err_ax, "error_rate_pct")):
        for n, th in enumerate(t for t in data.thresholds if t.metric == metric):
            ax.hlines(th.value, th.from_s / scale, th.to_s / scale, colors="#c92a2a", linestyles=":", linewidth=1.5,
                      label="threshold" if n == 0 else None)
        for at_s, weight in data.stages:
            ax.axvline(at_s / scale, color="#868e96", linewidth=0.8)
        if data.rollback_s is not None:
            ax.axvline(data.rollback_s / scale, color="#c92a2a", linewidth=2, label="rollback")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, max(data.end_s / scale, 1e-3) * 1.02)
    for at_s, weight in data.stages:  # above the plot, where no line or legend covers it
        p95_ax.annotate(f"{weight}%", (at_s / scale, 1.0), xycoords=("data", "axes fraction"), textcoords="offset points",
                        xytext=(0, 2), ha="center", va="bottom", fontsize=8, color="#495057")
    p95_ax.set_ylabel("p95 (ms)")
    err_ax.set_ylabel("error rate (%)")
    err_ax.set_xlabel(f"time since start ({unit})" + ("" if data.source == "windows" else "; one point per check"))
    if data.empty:
        p95_ax.text(0.5, 0.5, "no measurements in this run", transform=p95_ax.transAxes, ha="center", va="center",
                    color="#868e96")
    else:
        p95_ax.legend(loc="upper left", fontsize=8)  # not "best": it scans every point
    if data.rollback_s is not None and data.empty:
        err_ax.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()

