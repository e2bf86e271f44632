"""Absolute limits judged with confidence bounds (shared/limits.py, shared/judge.py): noise cannot trip them.

A window as the prober measures it (services/prober/stats.py: real latencies in its histogram, summarised with the
bounds at 1 - the plan's analysis.alpha) is judged by the coordinator's per-window analysis
(services/coordinator/analysis.py): a breach only when the bound is past the limit, a pass only when it is clearly
inside, otherwise inconclusive, and the reason says which. Pure: no server.
"""

from __future__ import annotations

import math

import pytest

from golive.services.coordinator.analysis import judge_window
from golive.services.prober.stats import LatencyWindow
from golive.shared.commands import Thresholds
from golive.shared.events import LatencySummary, ProbeWindow
from golive.shared.judge import judge
from golive.shared.limits import binomial_cdf, quantile_ranks, rate_bounds

ALPHA = 0.01  # the plan's analysis.alpha (default): bounds at 99%
P95 = Thresholds(p95_ms=400)
ERRORS = Thresholds(error_rate_pct=1)


def measured(latencies_ms: list[float], errors: int = 0, alpha: float | None = ALPHA) -> ProbeWindow:
    """One window of a check, summarised by the prober from these requests (``errors`` of them failed)."""
    window = LatencyWindow()
    for ms in latencies_ms:
        window.record(ms / 1000.0)
    for _ in range(errors):
        window.record_error("timeout")
    return ProbeWindow(command_id="run-1.4.stage1:hold", probe="recent", index=3, start_s=90, seconds=30,
                       stats=window.summary(30.0, alpha))


def test_a_p95_just_above_the_limit_over_few_requests_is_inconclusive_not_beyond_noise():
    # 64 requests, 6 of them (9%) slower than 400 ms: the p95 reads 412 ms, but a target whose p95 is within 400 ms
    # shows 6 slow requests in 64 often enough that it is no evidence of a breach
    window = measured([100.0] * 58 + [412.0] * 6)

    verdict = judge_window(window, P95, min_samples=20)

    assert verdict.verdict == "inconclusive"
    assert verdict.why.startswith("p95 412 ms > 400 ms but not beyond noise: 99% bound 100 ms and up")
    assert verdict.why.endswith("over 64 requests")


def test_the_same_p95_without_bounds_fails_as_it_did_before_them():
    # a window recorded before the bounds (confidence 0) is judged on its point estimate, as then
    old = measured([100.0] * 58 + [412.0] * 6, alpha=None)
    assert old.stats.confidence == 0.0 and not old.stats.bounds_ms

    assert judge_window(old, P95, min_samples=20).verdict == "fail"


def test_a_p95_far_above_the_limit_is_a_breach_with_its_bound():
    window = measured([100.0] * 40 + [900.0] * 24)

    verdict = judge_window(window, P95, min_samples=20)

    assert verdict.verdict == "fail"
    assert verdict.why == "p95 900 ms > 400 ms (99% bound 900 ms and up (too few requests for an upper bound)) over 64 requests"


def test_a_p95_clearly_inside_the_limit_passes():
    window = measured([20.0] * 290 + [350.0] * 10)

    verdict = judge_window(window, P95, min_samples=20)

    assert verdict.verdict == "pass"
    assert verdict.why == "p95 20.02 ms <= 400 ms over 300 requests"


def test_a_p95_inside_the_limit_over_too_few_requests_to_be_clearly_inside_passes_as_measured():
    # 60 fast requests: no upper bound of the p95 at 99% exists yet (104 are needed); within the limit as measured
    # is a pass (a rehearsal's 2 s windows hold 40 requests at the runbook's rate: shared/judge.py)
    window = measured([20.0] * 60)
    verdict = judge_window(window, P95, min_samples=20)
    [reading] = judge(window.stats, P95, 20).readings

    assert (verdict.verdict, verdict.why) == ("pass", "p95 20.02 ms <= 400 ms over 60 requests")
    assert reading.inside and not reading.clearly_inside and reading.bound == (20.015, None)


@pytest.mark.parametrize(("failed", "of", "verdict", "words"), [
    (2, 100, "inconclusive", "error rate 2% > 1% but not beyond noise: 99% bound 0.1-8.94%"),
    (30, 100, "fail", "error rate 30% > 1% (99% bound 18.9-43.06%)"),
    (0, 1_000, "pass", "error rate 0% <= 1%"),
    (0, 100, "pass", "error rate 0% <= 1%"),  # not clearly inside (5.16% the upper bound), but within as measured
])
def test_an_error_rate_is_judged_by_its_bounds(failed, of, verdict, words):
    judged = judge_window(measured([20.0] * (of - failed), errors=failed), ERRORS, min_samples=20)

    assert (judged.verdict, judged.why) == (verdict, f"{words} over {of:,} requests")


def test_an_error_rate_limit_of_zero_is_a_count_no_noise_blurs():
    zero = Thresholds(error_rate_pct=0)

    assert judge_window(measured([20.0] * 49, errors=1), zero, min_samples=20).verdict == "fail"
    assert judge_window(measured([20.0] * 50), zero, min_samples=20).verdict == "pass"


def test_a_probe_total_and_a_window_of_the_same_numbers_get_the_same_verdict():
    # the prober judges a probe's totals with the same judge: one rule, one place
    window = measured([100.0] * 58 + [412.0] * 6)
    total = judge(window.stats, P95, 20)

    assert (total.verdict, total.why) == (judge_window(window, P95, 20).verdict, judge_window(window, P95, 20).why)
    assert [v.passed for v in total.verdicts()] == [False]  # inconclusive is no pass


def test_summaries_published_with_bounds_read_back_the_same():
    # the bounds travel in the window's stats (additive fields): a ProbeWindow survives its JSON
    stats = measured([20.0] * 290 + [350.0] * 10).stats
    again = LatencySummary.model_validate_json(stats.model_dump_json())

    assert again == stats and again.confidence == 0.99 and set(again.bounds_ms) == {"p95_ms", "p99_ms"}


# --- the maths (shared/limits.py) --------------------------------------------------------------------------------


def exact_cdf(k: int, n: int, p: float) -> float:
    # summed term by term in logs (an independent route to the same number)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
                        + (n - i) * math.log1p(-p)) for i in range(k + 1))


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.5), (3, 10, 0.5), (60, 64, 0.95), (95, 100, 0.95), (5, 300, 0.01)])
def test_the_binomial_cdf_is_exact(k, n, p):
    assert binomial_cdf(k, n, p) == pytest.approx(exact_cdf(k, n, p), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n", [2, 20, 64, 104, 300, 1_000, 5_000])
@pytest.mark.parametrize("q", [0.95, 0.99])
def test_a_target_exactly_at_its_limit_is_breached_by_noise_in_at_most_half_of_alpha(n, q):
    # the low-th fastest request is slower than the true percentile only when fewer than ``low`` requests are faster:
    # binomial(n, q) < low, which the ranks hold to alpha/2; likewise the high-th is faster than it
    low, high = quantile_ranks(n, q, ALPHA)
    if low is not None:
        assert exact_cdf(low - 1, n, q) <= ALPHA / 2 < exact_cdf(low, n, q)  # and no tighter rank would do
    if high is not None:
        assert 1 - exact_cdf(high - 1, n, q) <= ALPHA / 2 + 1e-12 < 1 - exact_cdf(high - 2, n, q)


def test_rate_bounds_are_the_clopper_pearson_interval():
    low, high = rate_bounds(100, 5, 0.05)  # the textbook example: 5 of 100 at 95%

    assert (low, high) == (pytest.approx(0.01643, abs=1e-5), pytest.approx(0.11284, abs=1e-5))
    assert rate_bounds(600, 0, ALPHA)[1] < 0.01 < rate_bounds(500, 0, ALPHA)[1]  # ~528 clean requests pass 1%
