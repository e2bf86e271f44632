"""What Prometheus says of a window becomes the window every kind produces (pure: no server)."""

from __future__ import annotations

from golive.services.prober.prometheus_probe import ERROR_CLASS, POINTS, Traffic, prom_range
from golive.services.prober.stats import LatencyWindow, judge
from golive.shared.judge import REQUESTS_UNREAD
from golive.shared.plan.checks import Thresholds

LIMITS = Thresholds(p95_ms=400, error_rate_pct=1.0, min_samples=20)
DOWN = "prometheus at http://127.0.0.1:9 unreachable: ConnectError"

QUANTILES = {0.5: 0.010, 0.9: 0.050, 0.95: 0.100, 0.99: 0.400}


def test_a_window_has_the_requests_failures_and_quantiles_prometheus_reports():
    window, latencies = Traffic(rate=40.0, error_ratio=0.05, quantiles=QUANTILES).window(30.0)

    assert window.samples == 1_200 and window.error_count == 60 and window.errors == {ERROR_CLASS: 60}
    assert len(latencies) == POINTS  # the comparison's sample: the quantile curve, not 1,140 copies of it
    for q, seconds in QUANTILES.items():
        assert abs(window.percentile_ms(q * 100) - seconds * 1000) <= 0.05 * seconds * 1000 + 1, q


def test_no_traffic_is_no_requests_not_a_fast_window():
    window, latencies = Traffic(rate=None, error_ratio=None, quantiles=dict.fromkeys(QUANTILES)).window(30.0)
    assert window.samples == 0 and latencies == []


def test_only_failures_have_no_latency():
    window, latencies = Traffic(rate=2.0, error_ratio=1.0, quantiles=dict.fromkeys(QUANTILES)).window(10.0)
    assert (window.count, window.error_count, latencies) == (0, 20, [])


def test_a_windows_range_is_whole_milliseconds_and_at_least_a_second():
    assert (prom_range(30.0), prom_range(2.5), prom_range(0.2)) == ("30000ms", "2500ms", "1000ms")


def test_a_window_prometheus_could_not_give_is_inconclusive_saying_why_once():
    window = LatencyWindow()
    window.unread[REQUESTS_UNREAD] = DOWN

    judged = judge(window, LIMITS)

    assert judged.verdict == "inconclusive" and judged.why == f"requests unread ({DOWN})", judged.why
    assert not any(v.passed for v in judged.verdicts())


def test_a_hold_with_an_unread_window_is_not_a_pass_but_a_breach_read_still_fails():
    healthy, _ = Traffic(rate=40.0, error_ratio=0.0, quantiles=QUANTILES).window(30.0)
    failing, _ = Traffic(rate=40.0, error_ratio=0.2, quantiles=QUANTILES).window(30.0)
    for read, verdict in ((healthy, "inconclusive"), (failing, "fail")):
        hold = LatencyWindow()
        hold.merge(read)
        unread = LatencyWindow()
        unread.unread[REQUESTS_UNREAD] = DOWN
        hold.merge(unread)
        assert judge(hold, LIMITS).verdict == verdict, judge(hold, LIMITS).why
