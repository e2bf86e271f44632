"""The status badges of a run (the runbook's Phase 4), from its story: the outcome first, then the numbers that decided
it. A run that did not go live is never green: its outcome badge is red, and its p95 and error-rate badges show the
deciding stage's worst numbers, red where they breached the stage's limits.

- ``badge-outcome.svg``: ``go-live: live`` (green) / ``rolled back``, ``failed``, ``needs a human`` (red) / running.
- ``badge-p95.svg``, ``badge-error-rate.svg``: the worst window or check of the deciding stage (a failed run), else of
  the whole run; red when a number was over its limit, green only when the run went live.
- ``badge-uptime.svg``: the share of the canary's requests that did not fail, over every judged window (a stage without
  windows: its checks); green at 99.9% or more when the run went live.
"""

from __future__ import annotations

from golive.services.coordinator.run_report import outcome_words
from golive.shared.story import CheckStory, RunStory, WindowStory

UPTIME_TARGET_PCT = 99.9  # the runbook's uptime target (update_status_badges.py --uptime_target 99.9)


def badges(story: RunStory) -> dict[str, str]:
    """File name -> SVG of each badge."""
    live = story.outcome == "succeeded"
    stage = story.deciding_stage
    windows = [w for w in (stage.judged_windows if stage else story.windows) if not w.guard]
    checks = list(stage.checks if stage else story.checks)
    at = f" at {stage.weight}%" if stage else ""
    outcome_color = "green" if live else "red" if story.finished or story.failure else "orange"
    result = {"badge-outcome.svg": _badge("go-live", outcome_words(story), outcome_color)}
    for name, metric, label, unit in (("badge-p95.svg", "p95_ms", "p95", " ms"),
                                      ("badge-error-rate.svg", "error_rate_pct", "error rate", "%")):
        values, over = _measured(metric, windows, checks)
        worst = max(values, default=None)
        shown = "n/a" if worst is None else (f"{worst:.0f}{unit}" if unit == " ms" else f"{worst:.2f}{unit}") + at
        result[name] = _badge(label, shown, "red" if over else "green" if live and worst is not None else "lightgrey")
    uptime = _uptime(story)
    shown = "n/a" if uptime is None else f"{uptime:.2f}%"
    color = ("lightgrey" if uptime is None else "red" if uptime < UPTIME_TARGET_PCT else "green" if live else "lightgrey")
    result["badge-uptime.svg"] = _badge("uptime", shown, color)
    return result


def _measured(metric: str, windows: list[WindowStory], checks: list[CheckStory]) -> tuple[list[float], bool]:
    """The values of ``metric`` in these windows and checks, and whether one was over its limit."""
    readings = [r for w in windows for r in w.readings if r.metric == metric and r.observed is not None]
    rows = [c for c in checks if c.metric == metric and c.value >= 0]
    values = [r.observed for r in readings if r.observed is not None] + [c.value for c in rows]
    return values, any(r.over for r in readings) or any(not c.passed for c in rows)


def _uptime(story: RunStory) -> float | None:
    """100% minus the failed share of the canary's requests: its windows where a stage has them, else its checks."""
    requests = errors = 0.0
    for stage in story.stages:
        windows = [w for w in stage.judged_windows if not w.guard and w.error_rate_pct is not None]
        if windows:
            requests += sum(w.requests for w in windows)
            errors += sum(w.requests * (w.error_rate_pct or 0.0) / 100 for w in windows)
        else:
            rows = [c for c in stage.checks if c.metric == "error_rate_pct" and c.value >= 0]
            requests += sum(c.samples for c in rows)
            errors += sum(c.samples * c.value / 100 for c in rows)
    return 100.0 - 100.0 * errors / requests if requests else None


def _badge(label: str, value: str, color: str) -> str:
    import anybadge  # the `reports` extra: artifacts.py asks for it before drawing a badge

    return anybadge.Badge(label, value, default_color=color).badge_svg_text
