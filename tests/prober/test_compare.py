"""Canary against stable, as pure functions: the Mann-Whitney U test and the verdict built on it."""

from __future__ import annotations

import math
import random

import pytest

from golive.services.prober.compare import compare, mann_whitney, two_proportions
from golive.services.prober.stats import LatencyWindow, Reservoir


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


def feed_hold(canary_ms, stable_ms, pairs: int, tolerance_ms: float = 50.0, rate: float = 15.0):
    """Pairs of requests due at the same instants, fed to a HoldJudge as a hold's recorders would."""
    from golive.services.prober.compare import HoldJudge

    judge, probe, base = HoldJudge(tolerance_ms, 0.01, rate, 100.0), window([]), window([])
    for i in range(pairs):
        due = 100.0 + i / rate
        for side, target, ms in (("canary", probe, canary_ms(i)), ("stable", base, stable_ms(i))):
            target.record_error("http_5xx") if ms is None else target.record(ms / 1000)
            if (decision := judge.record(side, due, ms, due + 0.01, probe, base)) is not None:
                return decision, i + 1
    return None, pairs


def test_a_hold_judge_says_why_in_error_rates_with_the_sequential_p_and_the_time_into_the_hold():
    rng = random.Random(8)
    decision, pairs = feed_hold(lambda i: None if rng.random() < 0.2 else 10.0, lambda i: 10.0, 2000)
    assert decision is not None and decision.p_value <= 0.01 and pairs < 100
    assert decision.reason.startswith("canary error rate ") and " vs stable 0.0%, sequential p = " in decision.reason
    assert decision.reason.endswith(f"after {2 * pairs:,} requests, {decision.at_s:.1f} s into the hold")


def test_a_hold_judge_says_why_in_p95_when_latency_carried_the_evidence():
    decision, pairs = feed_hold(lambda i: 310.0 + i % 7, lambda i: 10.0 + i % 5, 2000)
    assert decision is not None and pairs <= 12
    assert decision.reason.startswith("canary p95 316 ms vs stable 14.01 ms (tolerance 50 ms), sequential p = ")


def test_a_canary_slower_only_within_the_tolerance_is_never_worse():
    """Its pairs lean one way (the sign test may reject) but a p95 20 ms above stable's is within 50 ms: no failure."""
    rng = random.Random(9)
    decision, _ = feed_hold(lambda i: 30 + rng.expovariate(1 / 40), lambda i: 10 + rng.expovariate(1 / 40), 3000)
    assert decision is None


def test_requests_pair_by_their_due_time_whatever_order_they_complete_in():
    from golive.services.prober.compare import HoldJudge

    judge, probe, base = HoldJudge(0.0, 0.01, 10.0, 0.0), window([]), window([])
    judge.record("canary", 0.2, 5.0, 1.0, probe, base)
    judge.record("stable", 0.1, 5.0, 1.0, probe, base)
    assert judge.paired.pairs == 0
    judge.record("canary", 0.1, 9.0, 1.0, probe, base)
    judge.record("stable", 0.2, 4.0, 1.0, probe, base)
    assert judge.paired.pairs == 2 and judge.paired.test.successes == 2


def test_a_canary_turning_300_ms_slower_late_in_a_hold_fails_within_the_fresh_starts_bound_of_the_onset():
    """Two minutes of a healthy canary first, with a tolerance so small that 60% of pairs are discordant (coin flips
    the judge bets on and mostly loses): the sign test of the whole hold is then far below 1. The e-process started
    fresh at 120 s sees only the fault, every pair of it against the canary; its bet on "always the canary" (weight
    0.8 of that start's weight) doubles with each pair, so it reaches 1/alpha within ``needed`` pairs of the onset,
    and the stretch since 120 s shows a p95 far past the tolerance (on enough requests to say so with confidence)."""
    from golive.services.prober.sequential import SIGN_ALTERNATIVES, restart_weight

    rate, onset_s, tolerance_ms = 15.0, 120.0, 5.0
    onset = int(onset_s * rate)
    theta, weight = SIGN_ALTERNATIVES[-1]
    start = restart_weight(4)  # the hold's 120 s is its fifth 30 s boundary (the first is its start)
    needed = math.ceil(math.log(1 / (0.01 * start * weight)) / math.log(2 * theta))
    for seed in range(5):
        rng = random.Random(seed)
        decision, pairs = feed_hold(lambda i: 10 + rng.expovariate(1 / 10) + (300 if i >= onset else 0),
                                    lambda i: 10 + rng.expovariate(1 / 10), onset + 1000, tolerance_ms, rate)
        assert decision is not None and onset < pairs <= onset + needed, (seed, pairs - onset)
        # the hold's p95 does not show it yet (under 5% of its requests are slow): the stretch since 120 s does, said so
        assert decision.reason.startswith("canary p95 ") and " since 120 s, sequential p = " in decision.reason


def test_the_hold_p95_gap_says_what_the_histograms_p95s_say_at_every_request_reading_them_seldom():
    """P95Gap reads the hold's histograms only when a bound on the p95s over the next requests no longer holds: its
    answer is the one two percentile reads give, after every request, both while the gap is well within the tolerance
    (read seldom) and once the canary turns slow and the gap nears it and passes it."""
    from golive.services.prober.compare import P95Gap

    rng = random.Random(3)
    gap, probe, base = P95Gap(1.0), window([]), window([])
    reads = 0
    read_ranks = probe.values_at_ranks

    def counted(ranks: list[int]) -> dict[int, float]:
        nonlocal reads
        reads += 1
        return read_ranks(ranks)

    probe.values_at_ranks = counted  # type: ignore[method-assign]
    said, reads_at = [], {}
    for i in range(600):
        # a millisecond or so (a short walk of the histograms); the canary 3 ms slower for a third of the last 200
        slow = 3.0 if i >= 400 and rng.random() < 1 / 3 else 0.0
        probe.record((0.2 + rng.expovariate(1 / 0.2) + slow) / 1000)
        base.record((0.2 + rng.expovariate(1 / 0.2)) / 1000)
        said.append(gap.exceeds(probe, base))
        assert said[-1] == (probe.percentile_ms(95) - base.percentile_ms(95) > 1.0), i
        reads_at[i] = reads
    # well within the tolerance on a few hundred requests a side: a read every ten or so (at first after each one)
    assert not any(said[50:400]) and reads_at[399] - reads_at[199] < 40, reads_at
    assert said[-1]


def test_a_stretch_since_a_segment_has_the_requests_of_it_and_every_later_one_sorted():
    from golive.services.prober.compare import KEPT_SEGMENTS, Segments

    rng = random.Random(4)
    segments, added = Segments(), []
    for i in range(600):
        segment, ms = i // 50, None if rng.random() < 0.1 else rng.expovariate(1 / 20)
        segments.add(segment, "canary", ms)
        added.append((segment, ms))
        if i % 7 == 0:
            for since, canary, stable in segments.stretches():
                assert since > segment - KEPT_SEGMENTS and stable.count == 0
                answered = [ms for s, ms in added if s >= since and ms is not None]
                assert canary.latencies_ms == sorted(answered) and canary.failed == sum(
                    1 for s, ms in added if s >= since and ms is None)
                assert canary.slower_than(20.0) == sum(ms > 20.0 for ms in answered)
