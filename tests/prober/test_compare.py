"""Canary against stable, as pure functions: the Mann-Whitney U test and the verdict built on it."""

from __future__ import annotations

import random

import pytest

from services.prober.compare import compare, mann_whitney, two_proportions
from services.prober.stats import LatencyWindow, Reservoir


def window(latencies_ms: list[float], errors: int = 0) -> LatencyWindow:
    w = LatencyWindow(reservoir=Reservoir(seed=1))
    for ms in latencies_ms:
        w.record(ms / 1000)
    for _ in range(errors):
        w.record_error("http_5xx")
    return w


def lognormal(median_ms: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0, 0.3) for _ in range(n)]


def test_mann_whitney_matches_the_textbook_normal_approximation():
    p, prob = mann_whitney([1, 2, 3], [4, 5, 6])
    assert prob == 0.0
    assert p == pytest.approx(0.0809, abs=1e-3)  # z = (4.5 - 0.5) / sqrt(5.25), with continuity correction


def test_mann_whitney_counts_ties_as_half():
    p, prob = mann_whitney([1, 1, 1], [1, 1, 1])
    assert prob == 0.5 and p == 1.0


def test_two_proportions_of_equal_rates_differ_by_nothing():
    assert two_proportions(5, 500, 5, 500) == pytest.approx(1.0)
    assert two_proportions(50, 500, 5, 500) < 1e-6


def test_canary_30_ms_slower_is_worse():
    result = compare(window(lognormal(35, 400, 1)), window(lognormal(5, 400, 2)))
    assert result.verdict == "worse" and result.p_value < 1e-6 and result.prob_slower > 0.95
    assert result.p95_delta_ms > 20 and "worse" in result.reason


def test_same_distribution_makes_no_difference():
    result = compare(window(lognormal(5, 400, 3)), window(lognormal(5, 400, 4)))
    assert result.verdict == "no difference"


def test_significant_but_tiny_shift_within_tolerance_makes_no_difference():
    result = compare(window([5.2] * 500), window([5.0] * 500), tolerance_ms=1.0)
    assert result.p_value < 1e-6 and result.verdict == "no difference"


def test_faster_canary_is_better():
    assert compare(window(lognormal(5, 400, 5)), window(lognormal(40, 400, 6))).verdict == "better"


def test_more_errors_on_the_canary_is_worse_even_at_equal_latency():
    result = compare(window(lognormal(5, 400, 7), errors=40), window(lognormal(5, 400, 8), errors=0))
    assert result.verdict == "worse" and result.error_rate_delta_pct > 5


def test_too_few_samples_cannot_tell():
    result = compare(window([50.0] * 10), window([5.0] * 10))
    assert result.verdict == "no difference" and "too few samples" in result.reason


def test_reservoir_keeps_a_bounded_uniform_sample():
    reservoir = Reservoir(size=100, seed=1)
    for value in range(10_000):
        reservoir.add(float(value))
    assert len(reservoir.values) == 100 and reservoir.seen == 10_000
    assert 3_000 < sum(reservoir.values) / 100 < 7_000  # drawn from the whole stream, not its start
