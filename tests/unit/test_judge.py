"""The judge of thresholds (shared/judge.py): numbers against limits, one verdict and one wording, the same for a
window of a stage's hold (coordinator) and for a probe's totals (prober)."""

from __future__ import annotations

import pytest

from golive.shared.commands import Thresholds
from golive.shared.events import LatencySummary
from golive.shared.judge import GAUGES, error_rate_pct, judge, reading_words


def numbers(count: int = 1_200, errors: int = 4, p95: float = 120.0, p99: float = 180.0, **gauges: float) -> LatencySummary:
    return LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p99, max_ms=p99 * 2,
                          gauges=gauges)


def test_error_rate_is_failed_requests_among_all_requests_and_zero_without_any():
    assert error_rate_pct(count=75, errors=25) == 25.0
    assert error_rate_pct(count=0, errors=3) == 100.0
    assert error_rate_pct(count=0, errors=0) == 0.0


def test_numbers_within_every_limit_pass_with_the_numbers_in_words():
    judged = judge(numbers(), Thresholds(p95_ms=400, error_rate_pct=1))

    assert judged.verdict == "pass"
    assert judged.why == "p95 120 ms <= 400 ms, error rate 0.33% <= 1% over 1,204 requests"
    assert [(v.metric, v.observed, v.passed, v.samples) for v in judged.verdicts()] == [
        ("p95_ms", 120.0, True, 1_204), ("error_rate_pct", pytest.approx(0.332, abs=1e-3), True, 1_204)]


def test_a_breach_fails_and_the_why_names_only_the_breaches():
    judged = judge(numbers(errors=100, p95=512.0), Thresholds(p95_ms=400, p99_ms=800, error_rate_pct=1))

    assert judged.verdict == "fail"
    assert judged.why == "p95 512 ms > 400 ms, error rate 7.69% > 1% over 1,300 requests"


def test_too_few_requests_are_inconclusive_however_slow():
    judged = judge(numbers(count=15, errors=4, p95=5_000.0), Thresholds(p95_ms=400, error_rate_pct=1), min_samples=20)

    assert judged.verdict == "inconclusive"
    assert judged.why == "19 requests < min_samples 20"


def test_no_successful_request_is_inconclusive_for_latency_and_a_breach_for_the_error_rate():
    only_latency = judge(numbers(count=0, errors=50, p95=0.0), Thresholds(p95_ms=400))
    with_errors = judge(numbers(count=0, errors=50, p95=0.0), Thresholds(p95_ms=400, error_rate_pct=1))

    assert only_latency.verdict == "inconclusive"
    assert only_latency.why == "no successful request to measure latency on over 50 requests"
    assert with_errors.verdict == "fail" and with_errors.why == "error rate 100% > 1% over 50 requests"


def test_a_gauge_over_its_limit_fails_naming_the_gauge_in_words():
    judged = judge(numbers(count=15, replica_lag_s=9.25, connection_use_pct=40.0),
                   Thresholds(replica_lag_s=8, connection_use_pct=80))

    assert judged.verdict == "fail" and judged.why == "replica lag 9.25 s > 8 s"


def test_a_guard_gauge_never_measured_is_inconclusive_never_failed_and_never_passed():
    limits = Thresholds(replica_lag_s=8, wal_lag_bytes=104_857_600)
    none_measured = judge(numbers(count=0, errors=3), limits)
    one_measured = judge(numbers(count=15, wal_lag_bytes=1_048_576.0), limits)

    assert none_measured.verdict == "inconclusive"
    assert none_measured.why == "replica lag never measured, WAL lag never measured"
    assert one_measured.verdict == "inconclusive"
    assert one_measured.why == "WAL lag 1,048,576 bytes <= 104,857,600 bytes, replica lag never measured"
    # on the wire a gauge never measured is no number: not passed, observed -1
    assert [(v.metric, v.observed, v.passed) for v in none_measured.verdicts()] == [
        ("replica_lag_s", -1.0, False), ("wal_lag_bytes", -1.0, False)]


def test_the_guard_gauges_are_the_thresholds_gauge_limits():
    assert set(GAUGES) == {"replica_lag_s", "wal_lag_bytes", "connection_use_pct", "long_transactions"}
    assert set(GAUGES) <= set(Thresholds.model_fields)


def test_limits_without_thresholds_pass_and_say_so():
    assert judge(numbers(), Thresholds()).why == "no thresholds over 1,204 requests"
    assert judge(numbers(), Thresholds()).verdict == "pass"


def test_a_published_verdict_reads_in_the_same_words_and_a_faster_canary_is_a_number_not_a_missing_one():
    assert reading_words("p95_ms", 512.0, 400) == "p95 512 ms > 400 ms"
    assert reading_words("replica_lag_s", -1.0, 8) == "replica lag never measured"
    assert reading_words("p95_increase_ms", -12.5, 50) == "p95 increase over the baseline -12.5 ms <= 50 ms"


def test_an_unread_gauge_is_inconclusive_with_why_never_a_pass():
    summary = numbers(replica_lag_s=0.5, connection_use_pct=10.0).model_copy(
        update={"unread": {"replica_lag_s": "replica R: connection: refused"}})
    judged = judge(summary, Thresholds(replica_lag_s=8, connection_use_pct=80))

    assert judged.verdict == "inconclusive"
    assert judged.why == "connection use 10% <= 80%, replica lag unread (replica R: connection: refused)"
    assert [(v.metric, v.passed) for v in judged.verdicts()] == [("replica_lag_s", False), ("connection_use_pct", True)]


def test_an_unread_gauge_whose_read_value_is_over_its_limit_is_still_a_breach():
    summary = numbers(replica_lag_s=12.0).model_copy(update={"unread": {"replica_lag_s": "replica R: timeout"}})
    judged = judge(summary, Thresholds(replica_lag_s=8))

    assert judged.verdict == "fail" and judged.why == "replica lag 12 s > 8 s"


def test_a_window_the_prober_could_not_time_is_inconclusive_saying_so_never_a_failure():
    stalled = numbers(p95=1_600.0, p99=1_700.0).model_copy(update={"prober_lag_ms": 1_480.0, "overloaded": 12})
    judged = judge(stalled, Thresholds(p95_ms=400, error_rate_pct=1))

    assert judged.verdict == "inconclusive"
    assert judged.why == "prober overloaded: lag 1,480 ms (tolerance 500 ms), 12 requests not counted"


def test_a_gauge_over_its_limit_fails_even_while_the_prober_ran_late():
    stalled = numbers(replica_lag_s=12.0).model_copy(update={"prober_lag_ms": 900.0})
    assert judge(stalled, Thresholds(replica_lag_s=8)).verdict == "fail"


def test_a_lag_within_the_tolerance_leaves_the_numbers_judged():
    assert judge(numbers(p95=512.0).model_copy(update={"prober_lag_ms": 400.0}), Thresholds(p95_ms=400)).verdict == "fail"
