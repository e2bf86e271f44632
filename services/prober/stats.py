"""Latency statistics and threshold verdicts: pure functions over an HdrHistogram."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from shared.commands import Thresholds
from shared.events import Verdict

# 1 microsecond .. 1 hour, 3 significant digits: constant memory however long a probe runs.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3


@dataclass
class LatencyWindow:
    """Samples of one probe: latencies in a histogram, errors by class."""

    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS))
    errors: Counter = field(default_factory=Counter)

    def record(self, seconds: float) -> None:
        self.histogram.record_value(max(_LOWEST_US, min(_HIGHEST_US, int(seconds * 1_000_000))))

    def record_error(self, error_class: str) -> None:
        self.errors[error_class] += 1

    @property
    def count(self) -> int:
        return self.histogram.get_total_count()

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile_ms(self, q: float) -> float:
        if self.count == 0:
            return 0.0
        return self.histogram.get_value_at_percentile(q) / 1000.0

    def max_ms(self) -> float:
        return self.histogram.get_max_value() / 1000.0 if self.count else 0.0

    def error_rate_pct(self) -> float:
        total = self.count + self.error_count
        return 100.0 * self.error_count / total if total else 0.0


def judge(window: LatencyWindow, thresholds: Thresholds) -> tuple[list[Verdict], bool, str]:
    """Verdicts per threshold, overall pass, and a sentence that says why with the numbers."""
    verdicts: list[Verdict] = []
    if thresholds.p95_ms is not None:
        observed = window.percentile_ms(95)
        verdicts.append(Verdict(metric="p95_ms", limit=thresholds.p95_ms, observed=observed, passed=observed <= thresholds.p95_ms))
    if thresholds.p99_ms is not None:
        observed = window.percentile_ms(99)
        verdicts.append(Verdict(metric="p99_ms", limit=thresholds.p99_ms, observed=observed, passed=observed <= thresholds.p99_ms))
    if thresholds.error_rate_pct is not None:
        observed = window.error_rate_pct()
        verdicts.append(
            Verdict(metric="error_rate_pct", limit=thresholds.error_rate_pct, observed=observed, passed=observed <= thresholds.error_rate_pct)
        )
    samples = window.count + window.error_count
    enough = samples >= thresholds.min_samples
    # a latency limit judged on no successful request would pass on a p95 of 0: that is no evidence
    latency_judged = thresholds.p95_ms is not None or thresholds.p99_ms is not None
    no_latency = latency_judged and window.count == 0
    passed = enough and not no_latency and all(v.passed for v in verdicts)
    parts = [f"{v.metric.removesuffix('_ms').removesuffix('_pct')} {v.observed:.2f} {'<=' if v.passed else '>'} {v.limit:g}" for v in verdicts]
    if not enough:
        parts.append(f"only {samples} samples < {thresholds.min_samples} required")
    if no_latency:
        parts.append("no successful request to measure latency on")
    summary = f"{', '.join(parts) or 'no thresholds'} over {samples} requests"
    return verdicts, passed, summary
