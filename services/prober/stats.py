"""Latency statistics: pure functions over an HdrHistogram; their verdict is the shared judge's (shared/judge.py).

A window holds one HdrHistogram (constant memory however many requests it sees), errors by class, the
worst value of each health gauge, and optionally a bounded uniform sample of latencies (a reservoir) for
comparing two targets.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from golive.shared.events import Bound, LatencySummary
from golive.shared.judge import Judgement, error_rate_pct
from golive.shared.judge import judge as judge_numbers
from golive.shared.limits import quantile_ranks
from golive.shared.plan.checks import Thresholds

# 1 microsecond .. 1 hour, 3 significant digits: constant memory however long a probe runs.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
RESERVOIR_SIZE = 5_000
# the error class of open-loop requests due that no worker ever sent (the target too slow for the rate): they count
UNSENT = "unsent"


class Reservoir:
    """A uniform random sample of at most ``size`` values from a stream (Vitter's algorithm R)."""

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int | None = None) -> None:
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = self._random.randrange(self.seen)
            if slot < self.size:
                self.values[slot] = value


@dataclass
class LatencyWindow:
    """Samples of one probe: latencies in a histogram, errors by class, worst gauge values."""

    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS))
    errors: Counter = field(default_factory=Counter)
    gauges: dict[str, float] = field(default_factory=dict)
    unread: dict[str, str] = field(default_factory=dict)  # gauges some sample could not read: the latest why
    prober_lag_ms: float = 0.0  # the prober's loop, its worst lateness (loop_lag.py)
    overloaded: int = 0  # requests in flight across a stall of the prober: not counted
    late: int = 0  # open loop: requests sent late because every worker was busy (load.py)
    reservoir: Reservoir | None = None

    def record(self, seconds: float) -> None:
        self.histogram.record_value(max(_LOWEST_US, min(_HIGHEST_US, int(seconds * 1_000_000))))
        if self.reservoir is not None:
            self.reservoir.add(seconds * 1000.0)

    def record_error(self, error_class: str) -> None:
        self.errors[error_class] += 1

    def record_gauges(self, values: dict[str, float], unread: dict[str, str] | None = None) -> None:
        """Keep the worst (highest) value of each gauge, and why a gauge could not be read."""
        for name, value in values.items():
            if name not in self.gauges or value > self.gauges[name]:
                self.gauges[name] = value
        self.unread.update(unread or {})

    def merge(self, other: LatencyWindow) -> None:
        """Add ``other``'s samples into this window (the reservoir is not merged)."""
        self.histogram.add(other.histogram)
        self.errors.update(other.errors)
        self.record_gauges(other.gauges, other.unread)
        self.prober_lag_ms = max(self.prober_lag_ms, other.prober_lag_ms)
        self.overloaded += other.overloaded
        self.late += other.late

    @property
    def count(self) -> int:
        return self.histogram.get_total_count()

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def samples(self) -> int:
        return self.count + self.error_count

    def percentile_ms(self, q: float) -> float:
        if self.count == 0:
            return 0.0
        return self.histogram.get_value_at_percentile(q) / 1000.0

    def max_ms(self) -> float:
        return self.histogram.get_max_value() / 1000.0 if self.count else 0.0

    def error_rate_pct(self) -> float:
        return error_rate_pct(self.count, self.error_count)

    def values_at_ranks(self, ranks: list[int]) -> dict[int, float]:
        """The ``rank``-th fastest answered request's latency in ms for each rank (1-based; to the histogram's 3
        digits), in one pass over the histogram."""
        percentiles = {rank: 100.0 * rank / self.count for rank in ranks}
        values = self.histogram.get_percentile_to_value_dict(list(percentiles.values()))
        return {rank: values[p] / 1000.0 for rank, p in percentiles.items()}

    def bounds_ms(self, alpha: float) -> dict[str, Bound]:
        """The p95's and p99's two-sided ``1 - alpha`` bounds: the order statistics shared/limits.py names."""
        ranks = {name: quantile_ranks(self.count, q, alpha) for name, q in (("p95_ms", 0.95), ("p99_ms", 0.99))}
        values = self.values_at_ranks([r for pair in ranks.values() for r in pair if r is not None])
        return {name: Bound(low=None if low is None else values[low], high=None if high is None else values[high])
                for name, (low, high) in ranks.items()}

    def summary(self, seconds: float, alpha: float | None = None) -> LatencySummary:
        """The window's numbers as published; ``achieved_rate`` = requests answered (ok or not) per second. With
        ``alpha`` (the plan's analysis.alpha), the confidence bounds its limits are judged by, at ``1 - alpha``."""
        return LatencySummary(
            count=self.count, errors=self.error_count, errors_by_class=dict(self.errors),
            p50_ms=self.percentile_ms(50), p90_ms=self.percentile_ms(90), p95_ms=self.percentile_ms(95),
            p99_ms=self.percentile_ms(99), max_ms=self.max_ms(),
            achieved_rate=round(self.samples / seconds, 3) if seconds > 0 else 0.0, gauges=dict(self.gauges),
            unread=dict(self.unread), prober_lag_ms=round(self.prober_lag_ms, 3), overloaded=self.overloaded,
            confidence=0.0 if alpha is None else 1.0 - alpha,
            bounds_ms=self.bounds_ms(alpha) if alpha is not None and self.count else {},
            late=self.late, unsent=self.errors.get(UNSENT, 0),
        )


def failed_requests(numbers: LatencySummary) -> str:
    """``1,030 of 1,100 failed (http_4xx 1,030)``: the failed requests and their error classes, most first; "" when
    none failed."""
    if not numbers.errors:
        return ""
    classes = sorted(numbers.errors_by_class.items(), key=lambda item: (-item[1], item[0]))
    how = ", ".join(f"{name} {count:,}" for name, count in classes)
    return f"{numbers.errors:,} of {numbers.count + numbers.errors:,} failed" + (f" ({how})" if how else "")


def judge(window: LatencyWindow, thresholds: Thresholds, alpha: float | None = None) -> Judgement:
    """The window's numbers against ``thresholds``, by the one judge every service uses (shared/judge.py); with
    ``alpha``, on confidence bounds at ``1 - alpha``."""
    return judge_numbers(window.summary(0.0, alpha), thresholds)
