"""A probe's latency window and the verdicts it is judged by."""

from __future__ import annotations

import pytest

from golive.services.prober.stats import LatencyWindow, judge
from golive.shared.commands import Thresholds


def window_of(latencies_ms: list[float], errors: dict[str, int] | None = None) -> LatencyWindow:
    window = LatencyWindow()
    for ms in latencies_ms:
        window.record(ms / 1000)
    for error_class, n in (errors or {}).items():
        for _ in range(n):
            window.record_error(error_class)
    return window


ONE_TO_HUNDRED_MS = [float(ms) for ms in range(1, 101)]


def test_percentiles_are_read_in_milliseconds():
    window = window_of(ONE_TO_HUNDRED_MS)

    assert window.count == 100
    assert window.percentile_ms(50) == pytest.approx(50, rel=1e-3)
    assert window.percentile_ms(95) == pytest.approx(95, rel=1e-3)
    assert window.percentile_ms(99) == pytest.approx(99, rel=1e-3)
    assert window.max_ms() == pytest.approx(100, rel=1e-3)


def test_sub_millisecond_latencies_keep_microsecond_precision():
    window = window_of([0.25] * 10)

    assert window.percentile_ms(50) == pytest.approx(0.25, abs=0.001)


def test_empty_window_reads_as_zero():
    window = LatencyWindow()

    assert (window.count, window.error_count) == (0, 0)
    assert window.percentile_ms(95) == 0.0
    assert window.max_ms() == 0.0
    assert window.error_rate_pct() == 0.0


def test_error_rate_counts_errors_among_all_requests():
    window = window_of([2.0] * 75, errors={"timeout": 20, "connection": 5})

    assert window.error_count == 25
    assert window.errors == {"timeout": 20, "connection": 5}
    assert window.error_rate_pct() == 25.0


def test_window_of_only_errors_has_a_full_error_rate():
    assert window_of([], errors={"timeout": 3}).error_rate_pct() == 100.0


def test_probe_within_every_threshold_passes():
    window = window_of(ONE_TO_HUNDRED_MS, errors={"timeout": 1})

    judged = judge(window, Thresholds(p95_ms=400, p99_ms=500, error_rate_pct=1.0))

    assert judged.verdict == "pass"
    verdicts = judged.verdicts()
    assert [(v.metric, v.limit, v.passed) for v in verdicts] == [
        ("p95_ms", 400, True), ("p99_ms", 500, True), ("error_rate_pct", 1.0, True),
    ]
    assert verdicts[2].observed == pytest.approx(100 / 101)
    assert judged.why.endswith("over 101 requests")


def test_probe_fails_when_one_threshold_is_breached_and_the_summary_says_which():
    window = window_of(ONE_TO_HUNDRED_MS)

    judged = judge(window, Thresholds(p95_ms=90, error_rate_pct=1.0))

    assert judged.verdict == "fail"
    p95, error_rate = judged.verdicts()
    assert not p95.passed
    assert p95.observed == pytest.approx(95, rel=1e-3)
    assert error_rate.passed
    assert judged.why == f"p95 {p95.observed:.2f} ms > 90 ms over 100 requests"  # the breach, as a window's


def test_error_rate_above_its_limit_fails_the_probe():
    window = window_of([1.0] * 98, errors={"timeout": 2})

    judged = judge(window, Thresholds(error_rate_pct=1.5))

    assert judged.verdict == "fail"
    assert [(v.metric, v.observed, v.passed) for v in judged.verdicts()] == [("error_rate_pct", 2.0, False)]
    assert judged.why == "error rate 2% > 1.5% over 100 requests"


def test_limit_equal_to_the_observed_value_passes():
    window = window_of([1.0] * 98, errors={"timeout": 2})

    assert judge(window, Thresholds(error_rate_pct=2.0)).passed


def test_too_few_samples_are_inconclusive_not_a_pass_even_within_thresholds():
    window = window_of([1.0, 2.0, 3.0])

    judged = judge(window, Thresholds(p95_ms=400, min_samples=10))

    assert judged.verdict == "inconclusive" and not judged.passed
    assert all(v.passed for v in judged.verdicts())
    assert judged.why == "3 requests < min_samples 10"


def test_errors_count_as_samples():
    window = window_of([1.0] * 5, errors={"timeout": 5})

    assert judge(window, Thresholds(min_samples=10)).passed


def test_probe_without_thresholds_passes_and_says_so():
    judged = judge(window_of([1.0]), Thresholds())

    assert judged.verdicts() == []
    assert judged.passed
    assert judged.why == "no thresholds over 1 requests"


def test_empty_window_is_inconclusive_under_the_default_minimum_of_one_sample():
    judged = judge(LatencyWindow(), Thresholds(p95_ms=400))

    assert judged.verdict == "inconclusive"
    assert judged.why == "0 requests < min_samples 1"


def test_latency_limit_is_not_judged_when_no_request_succeeded():
    window = LatencyWindow()
    for _ in range(50):
        window.record_error("connection")
    judged = judge(window, Thresholds(p95_ms=400))
    assert judged.verdict == "inconclusive" and "no successful request" in judged.why


def test_probe_whose_every_request_failed_does_not_pass_even_without_thresholds():
    judged = judge(window_of([], errors={"connection": 3}), Thresholds())
    assert not judged.passed and "no successful request" in judged.why


def test_each_verdict_says_how_many_samples_it_rests_on():
    verdicts = judge(window_of([1.0] * 40, errors={"timeout": 2}), Thresholds(p95_ms=10, error_rate_pct=5)).verdicts()
    assert [v.samples for v in verdicts] == [42, 42]


def test_totals_whose_guard_gauge_was_never_measured_are_inconclusive_as_its_windows_are():
    # every health sample that read connection use failed to read the replica's lag: no number is no breach either
    window = window_of([1.0] * 30)
    window.record_gauges({"connection_use_pct": 40.0})

    judged = judge(window, Thresholds(replica_lag_s=8, connection_use_pct=80))

    assert judged.verdict == "inconclusive"
    assert judged.why == "connection use 40% <= 80%, replica lag never measured"
