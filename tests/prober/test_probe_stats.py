"""A probe's latency window and the verdicts it is judged by."""

from __future__ import annotations

import pytest

from services.prober.stats import LatencyWindow, judge
from shared.commands import Thresholds


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

    verdicts, passed, summary = judge(window, Thresholds(p95_ms=400, p99_ms=500, error_rate_pct=1.0))

    assert passed
    assert [(v.metric, v.limit, v.passed) for v in verdicts] == [
        ("p95_ms", 400, True), ("p99_ms", 500, True), ("error_rate_pct", 1.0, True),
    ]
    assert verdicts[2].observed == pytest.approx(100 / 101)
    assert "over 101 requests" in summary


def test_probe_fails_when_one_threshold_is_breached_and_the_summary_says_which():
    window = window_of(ONE_TO_HUNDRED_MS)

    verdicts, passed, summary = judge(window, Thresholds(p95_ms=90, error_rate_pct=1.0))

    assert not passed
    p95, error_rate = verdicts
    assert not p95.passed
    assert p95.observed == pytest.approx(95, rel=1e-3)
    assert error_rate.passed
    assert summary == f"p95 {p95.observed:.2f} > 90, error_rate 0.00 <= 1 over 100 requests"


def test_error_rate_above_its_limit_fails_the_probe():
    window = window_of([1.0] * 98, errors={"timeout": 2})

    verdicts, passed, summary = judge(window, Thresholds(error_rate_pct=1.5))

    assert not passed
    assert [(v.metric, v.observed, v.passed) for v in verdicts] == [("error_rate_pct", 2.0, False)]
    assert summary == "error_rate 2.00 > 1.5 over 100 requests"


def test_limit_equal_to_the_observed_value_passes():
    window = window_of([1.0] * 98, errors={"timeout": 2})

    _, passed, _ = judge(window, Thresholds(error_rate_pct=2.0))

    assert passed


def test_too_few_samples_fail_the_probe_even_within_thresholds():
    window = window_of([1.0, 2.0, 3.0])

    verdicts, passed, summary = judge(window, Thresholds(p95_ms=400, min_samples=10))

    assert not passed
    assert [(v.metric, v.passed) for v in verdicts] == [("p95_ms", True)]  # within the threshold it was judged on
    assert "only 3 samples < 10 required" in summary
    assert summary.endswith("over 3 requests")


def test_errors_count_as_samples():
    window = window_of([1.0] * 5, errors={"timeout": 5})

    _, passed, _ = judge(window, Thresholds(min_samples=10))

    assert passed


def test_probe_without_thresholds_passes_and_says_so():
    verdicts, passed, summary = judge(window_of([1.0]), Thresholds())

    assert verdicts == []
    assert passed
    assert summary == "no thresholds over 1 requests"


def test_empty_window_fails_the_default_minimum_of_one_sample():
    _, passed, summary = judge(LatencyWindow(), Thresholds(p95_ms=400))

    assert not passed
    assert "only 0 samples < 1 required" in summary


def test_latency_limit_fails_when_no_request_succeeded():
    window = LatencyWindow()
    for _ in range(50):
        window.record_error("connection")
    verdicts, passed, summary = judge(window, Thresholds(p95_ms=400))
    assert not passed
    assert "no successful request" in summary


def test_probe_whose_every_request_failed_fails_even_without_thresholds():
    window = window_of([], errors={"connection": 3})
    _, passed, summary = judge(window, Thresholds())
    assert not passed and "no successful request" in summary


def test_each_verdict_says_how_many_samples_it_rests_on():
    verdicts, _, _ = judge(window_of([1.0] * 40, errors={"timeout": 2}), Thresholds(p95_ms=10, error_rate_pct=5))
    assert [v.samples for v in verdicts] == [42, 42]
