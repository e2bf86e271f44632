"""Canary against stable under the same load: is the canary worse, better, or not measurably different?

Pure functions. Latencies: a two-sided Mann-Whitney U test on the two latency samples (normal
approximation with tie correction; no assumption about the shape of latency distributions), plus the
probability that a canary request is slower than a stable one. Errors: a two-proportion z test.

"worse" needs both a significant difference (p < ``alpha``) and one that matters: the canary's p95 above
stable's by more than ``tolerance_ms`` (default: 1 ms or 10% of stable's p95, whichever is larger), or
its error rate significantly higher by at least half a percentage point. Equal targets thus read as "no
difference" even when a huge sample makes a microscopic shift significant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.prober.stats import LatencyWindow
from shared.events import Comparison

ALPHA = 0.01
MIN_SAMPLES = 20
MIN_ERROR_RATE_DELTA_PCT = 0.5


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(two-sided p value, probability that a value of ``a`` exceeds one of ``b``, ties counting half)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0, 0.5
    combined = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    n = n1 + n2
    rank_sum_a = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and combined[j + 1][0] == combined[i][0]:
            j += 1
        average_rank = (i + j) / 2 + 1
        ties = j - i + 1
        tie_term += ties**3 - ties
        rank_sum_a += average_rank * sum(1 for k in range(i, j + 1) if combined[k][1] == 0)
        i = j + 1
    u_a = rank_sum_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0, u_a / (n1 * n2)
    z = (abs(u_a - mean) - 0.5) / math.sqrt(variance)  # continuity correction
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return min(1.0, p), u_a / (n1 * n2)


def two_proportions(errors_a: int, total_a: int, errors_b: int, total_b: int) -> float:
    """Two-sided p value of the difference between two error rates (pooled z test)."""
    if total_a == 0 or total_b == 0:
        return 1.0
    pooled = (errors_a + errors_b) / (total_a + total_b)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (errors_a / total_a - errors_b / total_b) / math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    return math.erfc(abs(z) / math.sqrt(2))


def compare(probe: LatencyWindow, baseline: LatencyWindow, tolerance_ms: float | None = None, alpha: float = ALPHA) -> Comparison:
    """The canary (``probe``) against stable (``baseline``), both windows of the same load over the same time."""
    a = probe.reservoir.values if probe.reservoir else []
    b = baseline.reservoir.values if baseline.reservoir else []
    p95_delta = probe.percentile_ms(95) - baseline.percentile_ms(95)
    error_delta = probe.error_rate_pct() - baseline.error_rate_pct()
    tolerance = tolerance_ms if tolerance_ms is not None else max(1.0, 0.10 * baseline.percentile_ms(95))
    p_latency, prob_slower = mann_whitney(a, b)
    p_errors = two_proportions(probe.error_count, probe.samples, baseline.error_count, baseline.samples)
    numbers = (f"p95 {probe.percentile_ms(95):.2f} vs {baseline.percentile_ms(95):.2f} ms ({p95_delta:+.2f}), "
               f"errors {probe.error_rate_pct():.2f}% vs {baseline.error_rate_pct():.2f}%, "
               f"p={p_latency:.3g}, P(slower)={prob_slower:.2f}, {len(a)} vs {len(b)} samples")
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        verdict, why = "no difference", f"too few samples to tell (need {MIN_SAMPLES} each)"
    elif (p_latency < alpha and prob_slower > 0.5 and p95_delta > tolerance) or (
        p_errors < alpha and error_delta >= MIN_ERROR_RATE_DELTA_PCT
    ):
        verdict, why = "worse", f"significant at p<{alpha:g} beyond {tolerance:.2f} ms tolerance"
    elif (p_latency < alpha and prob_slower < 0.5 and -p95_delta > tolerance) or (
        p_errors < alpha and -error_delta >= MIN_ERROR_RATE_DELTA_PCT
    ):
        verdict, why = "better", f"significant at p<{alpha:g} beyond {tolerance:.2f} ms tolerance"
    else:
        verdict, why = "no difference", f"no significant difference beyond {tolerance:.2f} ms tolerance"
    return Comparison(
        verdict=verdict, p95_delta_ms=round(p95_delta, 3), error_rate_delta_pct=round(error_delta, 3),
        p_value=p_latency, prob_slower=round(prob_slower, 4), samples=len(a), baseline_samples=len(b),
        reason=f"{verdict}: {why}; {numbers}",
    )
