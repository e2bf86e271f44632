"""Judging one window of a stage check or of the guard (services/coordinator/analysis.py): pure functions."""

from __future__ import annotations

from golive.services.coordinator.analysis import StageTally, count_window, judge_guard, judge_window
from golive.shared.commands import Thresholds
from golive.shared.events import LatencySummary, ProbeWindow
from golive.shared.plan.canary import Analysis


def window(count: int = 1_200, errors: int = 4, p95: float = 120.0, p99: float = 180.0, **gauges: float) -> ProbeWindow:
    stats = LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p99, max_ms=p99 * 2,
                           gauges=gauges)
    return ProbeWindow(command_id="run-1.4.stage2:hold", probe="recent", index=4, start_s=120, seconds=30, stats=stats)


LIMITS = Thresholds(p95_ms=400, error_rate_pct=1)


def test_window_within_every_threshold_passes_with_its_numbers():
    verdict = judge_window(window(), LIMITS, min_samples=20)

    assert verdict.verdict == "pass"
    assert verdict.why == "p95 120 ms <= 400 ms, error rate 0.33% <= 1% over 1,204 requests"
    assert (verdict.count, verdict.p95_ms, verdict.error_rate_pct) == (1_204, 120.0, 0.332)


def test_window_over_the_p95_threshold_fails_naming_the_breach_and_the_requests():
    verdict = judge_window(window(p95=512.0), LIMITS, min_samples=20)

    assert verdict.verdict == "fail"
    assert verdict.why == "p95 512 ms > 400 ms over 1,204 requests"


def test_window_failing_several_thresholds_names_each():
    verdict = judge_window(window(errors=100, p95=512.0, p99=900.0), Thresholds(p95_ms=400, p99_ms=800, error_rate_pct=1),
                           min_samples=20)

    assert verdict.verdict == "fail"
    assert verdict.why == "p95 512 ms > 400 ms, p99 900 ms > 800 ms, error rate 7.69% > 1% over 1,300 requests"


def test_window_with_fewer_requests_than_min_samples_is_inconclusive_however_slow():
    verdict = judge_window(window(count=15, errors=4, p95=5_000.0), LIMITS, min_samples=20)

    assert verdict.verdict == "inconclusive"
    assert verdict.why == "19 requests < min_samples 20"


def test_window_of_a_check_without_thresholds_passes_once_it_has_enough_requests():
    verdict = judge_window(window(), Thresholds(), min_samples=20)

    assert verdict.verdict == "pass" and "no thresholds" in verdict.why


def test_guard_window_over_a_limit_fails_naming_the_gauge():
    verdict = judge_guard(window(replica_lag_s=9.25, connection_use_pct=40.0),
                          {"replica_lag_s": 8, "connection_use_pct": 80})

    assert verdict.verdict == "fail"
    assert verdict.why == "replica lag 9.25 s > 8 s"


def test_guard_window_within_its_limits_passes_and_one_without_gauges_is_inconclusive():
    within = judge_guard(window(wal_lag_bytes=1_048_576.0), {"wal_lag_bytes": 104_857_600})
    unmeasured = judge_guard(window(count=0, errors=3), {"replica_lag_s": 8})

    assert within.verdict == "pass" and within.why == "WAL lag 1,048,576 bytes <= 104,857,600 bytes"
    assert unmeasured.verdict == "inconclusive"


POLICY = Analysis(failure_limit=3, consecutive_failure_limit=2)


def tally_of(*verdicts: tuple[str, str], policy: Analysis = POLICY) -> tuple[StageTally, str | None]:
    tally, limit = StageTally(), None
    for probe, verdict in verdicts:
        tally, limit = count_window(tally, probe, verdict, policy)
    return tally, limit


def test_two_consecutive_failures_of_one_check_reach_the_consecutive_limit():
    tally, limit = tally_of(("recent", "fail"), ("recent", "fail"))

    assert (tally.failures, tally.streak("recent")) == (2, 2)
    assert limit == "2 consecutive failed windows of recent reach consecutive_failure_limit 2"


def test_a_pass_breaks_the_streak_an_inconclusive_window_does_not_and_another_checks_pass_does_not():
    assert tally_of(("recent", "fail"), ("recent", "pass"), ("recent", "fail"))[0].streak("recent") == 1
    assert tally_of(("recent", "fail"), ("recent", "inconclusive"), ("recent", "fail"))[1] is not None
    assert tally_of(("recent", "fail"), ("app", "pass"), ("recent", "fail"))[1] is not None


def test_failures_of_all_checks_add_up_to_the_failure_limit():
    tally, limit = tally_of(("recent", "fail"), ("app", "fail"), ("recent", "pass"), ("app", "pass"), ("recent", "fail"))

    assert limit == "3 failed windows in the stage reach failure_limit 3"


def test_inconclusive_windows_count_as_failures_only_with_inconclusive_fail():
    strict = Analysis(consecutive_failure_limit=2, inconclusive="fail")

    assert tally_of(("recent", "inconclusive"), ("recent", "inconclusive"))[0].failures == 0
    assert tally_of(("recent", "inconclusive"), ("recent", "inconclusive"), policy=strict)[1] is not None
