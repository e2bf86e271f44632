"""Confidence bounds of the numbers an absolute limit is held to: a window's error rate and its p95 or p99.

Pure maths, no I/O, no dependency: the judge of thresholds (shared/judge.py) decides with these bounds, and the
prober (services/prober/stats.py) reads the order statistics they name from a window's histogram.

- **An error rate** over ``n`` requests of which ``k`` failed: the exact (Clopper-Pearson) interval of the binomial
  proportion. Its lower end is past the limit only when so many failed that a target within its limit shows as many
  failures in fewer than ``alpha / 2`` of windows.
- **A percentile** (p95: q = 0.95) over ``n`` answered requests: the distribution-free interval between two order
  statistics, the ``low``-th and ``high``-th fastest requests, chosen so that the true percentile lies below the
  first or above the second each with probability at most ``alpha / 2`` (the number of requests faster than the
  true percentile is binomial(n, q)). No model of latency is assumed, only independent requests.

A bound may not exist: a percentile's upper bound needs enough requests that not one of them is past it by chance
(p95 at 99%: 104 requests; p99: 528), and an error rate's upper bound is never clearly inside a limit until the
requests can show it (1% at 99%: 528 requests without a failure). Such a number is *inconclusive*, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# the regularized incomplete beta's continued fraction: converged well before this many terms for n up to 10^9
_MAX_TERMS = 400
_EPS = 1e-15


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return incomplete_beta(n - k, k + 1, 1.0 - p)


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The root of the increasing ``f`` in [lo, hi] (f(lo) <= 0 <= f(hi)), to double precision."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def rate_bounds(n: int, k: int, alpha: float) -> tuple[float, float]:
    """The two-sided ``1 - alpha`` Clopper-Pearson interval of a proportion: ``k`` of ``n`` (fractions, 0..1)."""
    if n <= 0:
        return 0.0, 1.0
    half = alpha / 2
    # lower: the p at which seeing k or more is exactly alpha/2 likely; upper: seeing k or fewer is
    low = 0.0 if k <= 0 else _bisect(lambda p: (1.0 - binomial_cdf(k - 1, n, p)) - half, 0.0, 1.0)
    high = 1.0 if k >= n else _bisect(lambda p: half - binomial_cdf(k, n, p), 0.0, 1.0)
    return low, high


def quantile_ranks(n: int, q: float, alpha: float) -> tuple[int | None, int | None]:
    """The 1-based ranks (low, high) of the order statistics of ``n`` values bounding their ``q``-quantile at two-sided
    ``1 - alpha``; None where there are too few values for that side's bound.

    low: the largest rank with P(binomial(n, q) < low) <= alpha/2 (the true quantile is below the low-th value that
    rarely); high: the smallest rank with P(binomial(n, q) >= high) <= alpha/2."""
    if n <= 0:
        return None, None
    half = alpha / 2
    # the largest j in [-1, n] with cdf(j) <= half, by bisection on the increasing cdf
    lo, hi = -1, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if binomial_cdf(mid, n, q) <= half:
            lo = mid
        else:
            hi = mid - 1
    low = lo + 1 if lo >= 0 else None
    # the smallest m in [0, n] with P(X > m) = 1 - cdf(m) <= half; the bound is the (m + 1)-th value
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if 1.0 - binomial_cdf(mid, n, q) <= half:
            hi = mid
        else:
            lo = mid + 1
    high = lo + 1 if lo + 1 <= n else None
    return low, high


def requests_to_pass(fraction: float, alpha: float) -> int:
    """The fewest requests, none of them past it, that show a limit of ``fraction`` past it (an error rate of 1%:
    0.01; a p95: 0.05 slower than its milliseconds) clearly inside at two-sided ``1 - alpha``: 528 for 1% at 99%."""
    return math.ceil(math.log(alpha / 2) / math.log1p(-fraction))


def confidence_words(confidence: float) -> str:
    """``99%``, ``99.9%``, ``95%``: a confidence level as people say it."""
    return f"{100 * confidence:.3f}".rstrip("0").rstrip(".") + "%"
