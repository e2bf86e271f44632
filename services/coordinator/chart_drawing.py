"""The deployment chart drawn: ``render_chart(data)`` turns what services/coordinator/chart.py folded from a run's events
(ChartData) into PNG bytes, with matplotlib's Agg backend (no display, no pyplot state, so it is safe in a service).

The only part of the chart that needs matplotlib: what the chart shows, and why, is chart.py's.
"""

from __future__ import annotations

import io
import textwrap
from typing import TYPE_CHECKING, Any

from golive.services.coordinator.chart import ChartData, Metric, Series, Threshold
from golive.shared.events import Finding

if TYPE_CHECKING:
    from matplotlib.axes import Axes


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


