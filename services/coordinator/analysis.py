"""Per-window analysis: the verdict on one window of a canary stage's check, and on one window of the guard.

Pure functions of a ProbeWindow and the limits it is held to, and the tally of a stage's verdicts against
plan.Analysis (failure_limit, consecutive_failure_limit, inconclusive); the saga keeps the tally in its state.

- A check's window is **inconclusive** with fewer than ``min_samples`` requests (too few to judge), else it
  **fails** when any of p95_ms, p99_ms or error_rate_pct is over its threshold, else it **passes**.
- A guard's window **fails** when any gauge (replica lag, WAL lag, connection use, long transactions) is over
  its limit, is **inconclusive** when it measured none of them, else it **passes**.
- The tally: failed windows are counted per stage (all its checks together), consecutive failed windows per
  check (windows of several checks interleave, so one check's pass must not hide another's streak). An
  inconclusive window is ignored (neither a failure nor a break of a streak), or a failure with
  ``inconclusive: fail``. Reaching either limit fails the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.events import ProbeWindow
from shared.plan.canary import Analysis
from shared.plan.checks import Thresholds

Verdict = Literal["pass", "fail", "inconclusive"]

_GAUGES = {
    "replica_lag_s": ("replica lag", " s"),
    "wal_lag_bytes": ("WAL lag", " bytes"),
    "connection_use_pct": ("connection use", "%"),
    "long_transactions": ("long transactions", ""),
}


@dataclass(frozen=True)
class WindowVerdict:
    """A window's verdict and why, in words a rollback message can quote ("p95 512 ms > 400 ms over 1,204 requests")."""

    verdict: Verdict
    why: str
    count: int  # requests in the window, failed ones included
    p95_ms: float | None = None
    error_rate_pct: float | None = None


@dataclass(frozen=True)
class StageTally:
    """The failed windows of one stage hold: all of them, and the current streak of each check."""

    failures: int = 0
    streaks: tuple[tuple[str, int], ...] = ()

    def streak(self, probe: str) -> int:
        return dict(self.streaks).get(probe, 0)


def count_window(tally: StageTally, probe: str, verdict: Verdict, policy: Analysis) -> tuple[StageTally, str | None]:
    """Add one check window's verdict to the stage's tally; the limit it reached (why the stage fails), if any."""
    counted = verdict == "fail" or (verdict == "inconclusive" and policy.inconclusive == "fail")
    streaks = dict(tally.streaks)
    if counted:
        streaks[probe] = streaks.get(probe, 0) + 1
    elif verdict == "pass":
        streaks[probe] = 0
    tally = StageTally(tally.failures + counted, tuple(sorted(streaks.items())))
    if counted and tally.streak(probe) >= policy.consecutive_failure_limit:
        return tally, (f"{tally.streak(probe)} consecutive failed windows of {probe} reach consecutive_failure_limit "
                       f"{policy.consecutive_failure_limit}")
    if counted and tally.failures >= policy.failure_limit:
        return tally, f"{tally.failures} failed windows in the stage reach failure_limit {policy.failure_limit}"
    return tally, None


def judge_window(window: ProbeWindow, thresholds: Thresholds, min_samples: int) -> WindowVerdict:
    """The verdict on one window of a check, against the check's latency and error-rate thresholds."""
    stats = window.stats
    count = stats.count + stats.errors
    error_rate = 100.0 * stats.errors / count if count else 0.0
    over = f"over {count:,} requests"
    if count < min_samples:
        return WindowVerdict("inconclusive", f"{count:,} requests < min_samples {min_samples}", count, None, None)
    measured = {"p95_ms": stats.p95_ms, "p99_ms": stats.p99_ms, "error_rate_pct": error_rate}
    breaches, within = [], []
    for metric, observed in measured.items():
        limit = getattr(thresholds, metric)
        if limit is None:
            continue
        text = _compare(metric, observed, limit)
        (breaches if observed > limit else within).append(text)
    if breaches:
        return WindowVerdict("fail", f"{', '.join(breaches)} {over}", count, stats.p95_ms, round(error_rate, 3))
    judged = ", ".join(within) or f"p95 {_num(stats.p95_ms)} ms (no thresholds)"
    return WindowVerdict("pass", f"{judged} {over}", count, stats.p95_ms, round(error_rate, 3))


def judge_guard(window: ProbeWindow, limits: dict[str, float]) -> WindowVerdict:
    """The verdict on one window of the guard probe: its worst gauge values against the plan's guard limits."""
    gauges = window.stats.gauges
    count = window.stats.count + window.stats.errors
    breaches, within = [], []
    for name, limit in limits.items():
        if name not in gauges:
            continue
        text = _compare(name, gauges[name], limit)
        (breaches if gauges[name] > limit else within).append(text)
    if breaches:
        return WindowVerdict("fail", ", ".join(breaches), count)
    if not within:
        return WindowVerdict("inconclusive", "no guard gauge measured", count)
    return WindowVerdict("pass", ", ".join(within), count)


def _compare(metric: str, observed: float, limit: float) -> str:
    op = ">" if observed > limit else "<="
    if metric in _GAUGES:
        label, unit = _GAUGES[metric]
        return f"{label} {_num(observed)}{unit} {op} {_num(limit)}{unit}"
    if metric == "error_rate_pct":
        return f"error rate {_num(observed)}% {op} {_num(limit)}%"
    return f"{metric.removesuffix('_ms')} {_num(observed)} ms {op} {_num(limit)} ms"


def _num(value: float) -> str:
    """512 -> "512", 3.14159 -> "3.14", 104857600 -> "104,857,600": numbers as a person reads them."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")
