"""The sequential judge (services/prober/sequential.py): valid at every look on healthy (A/A) streams, quick on bad ones.

The false-alarm checks are Monte Carlo with fixed seeds: the bound is alpha, the assertion alpha + 3 standard errors
of the simulated rate, with the judge looking after every pair of every simulated hold."""

from __future__ import annotations

import copy
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.services.prober.sequential import LimitBound, MixtureTest, PairedComparison, above, below, pair_outcome, sign_test

ALPHA = 0.01
HOLDS = 2000


def three_sigma_over(alpha: float, holds: int) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / holds)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.sampled_from(["sign", "above", "below"]),
       st.floats(min_value=0.01, max_value=0.5))
def test_each_e_process_is_a_martingale_under_its_null(history, kind, p0):
    """E[e after the next observation | the past] = e now, at p = p0 exactly: the heart of anytime validity."""
    test: MixtureTest = sign_test() if kind == "sign" else above(p0) if kind == "above" else below(p0)
    null = 0.5 if kind == "sign" else p0
    for x in history:
        test.update(x)
    now = math.exp(test.log_e)
    yes, no = copy.deepcopy(test), copy.deepcopy(test)
    yes.update(True)
    no.update(False)
    assert null * math.exp(yes.log_e) + (1 - null) * math.exp(no.log_e) == pytest.approx(now, rel=1e-9)


def test_pair_outcome_ranks_a_failure_below_any_answer_and_ignores_differences_within_tolerance():
    assert pair_outcome(None, 5.0, 50) is True
    assert pair_outcome(5.0, None, 50) is False
    assert pair_outcome(None, None, 50) is None
    assert pair_outcome(60.0, 5.0, 50) is True and pair_outcome(5.0, 60.0, 50) is False
    assert pair_outcome(40.0, 5.0, 50) is None


def aa_false_alarms(seed: int, pairs: int, tolerance_ms: float, error_rate: float, stalls: bool) -> float:
    """Healthy holds: canary and stable drawn from the same latency law (rounded to 0.1 ms: ties happen), the same
    error rate, and with ``stalls`` a busy prober machine that now and then delays both requests of a pair alike."""
    rng = random.Random(seed)
    alarms = 0
    for _ in range(HOLDS):
        judge = PairedComparison(tolerance_ms, ALPHA)
        for _ in range(pairs):
            stall = rng.expovariate(1 / 300) if stalls and rng.random() < 0.05 else 0.0
            sides = [None if rng.random() < error_rate else round(10 * rng.lognormvariate(0, 0.8) + stall, 1)
                     for _ in range(2)]
            judge.add_pair(sides[0], sides[1])
            if judge.worse:  # the judge looks after every pair
                alarms += 1
                break
    return alarms / HOLDS


@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.0, 2.0, 20.0]), st.sampled_from([0.0, 0.01, 0.2]),
       st.booleans())
def test_a_healthy_canary_is_judged_worse_at_most_alpha_of_the_time_over_every_look(seed, tolerance, errors, stalls):
    rate = aa_false_alarms(seed, 300, tolerance, errors, stalls)
    assert rate <= three_sigma_over(ALPHA, HOLDS), rate


def test_a_healthy_canary_with_no_tolerance_and_every_pair_discordant_stays_within_alpha():
    """The hardest A/A case: continuous latencies, tolerance 0, so every pair is a coin flip the judge bets on."""
    assert aa_false_alarms(7, 400, 0.0, 0.0, False) <= three_sigma_over(ALPHA, HOLDS)


def requests_to_detect(canary_error_rate: float, added_ms: float, seed: int, tolerance_ms: float = 50.0) -> int | None:
    rng = random.Random(seed)
    judge = PairedComparison(tolerance_ms, ALPHA)
    for i in range(1, 5000):
        canary = None if rng.random() < canary_error_rate else 10 * rng.lognormvariate(0, 0.5) + added_ms
        stable = None if rng.random() < 0.001 else 10 * rng.lognormvariate(0, 0.5)
        judge.add_pair(canary, stable)
        if judge.worse:
            return i
    return None


def test_five_percent_errors_are_worse_within_a_couple_of_hundred_pairs():
    found = [requests_to_detect(0.05, 0.0, seed) for seed in range(20)]
    assert all(n is not None for n in found)
    assert sorted(n for n in found if n is not None)[10] < 200  # 15 requests/s each: under 14 s


def test_a_canary_100_ms_slower_is_worse_within_a_dozen_pairs():
    assert all((requests_to_detect(0.0, 100.0, seed) or 10**9) <= 12 for seed in range(20))


def test_pairs_wait_for_their_twin_by_key():
    judge = PairedComparison(0.0, ALPHA)
    judge.record("canary", 1, None)
    judge.record("canary", 2, 5.0)
    assert judge.pairs == 0
    judge.record("stable", 2, 5.0)
    judge.record("stable", 1, 4.0)
    verdict = judge.verdict()
    assert (verdict.pairs, verdict.discordant, verdict.canary_worse, verdict.by_errors) == (2, 1, 1, 1)
    assert verdict.rates_pct() == (50.0, 0.0)


def limit_verdict(rate: float, limit: float, n: int, seed: int) -> str:
    rng = random.Random(seed)
    bound = LimitBound(limit, ALPHA)
    for _ in range(n):
        bound.update(rng.random() < rate)
    return bound.verdict().verdict


def test_an_error_rate_well_over_its_limit_is_a_breach_well_under_a_pass_and_too_few_inconclusive():
    assert limit_verdict(0.05, 0.01, 1000, 1) == "breach"
    assert limit_verdict(0.001, 0.01, 3000, 2) == "pass"
    assert limit_verdict(0.01, 0.01, 50, 3) == "inconclusive"


def test_a_p95_limit_is_judged_on_the_share_of_requests_slower_than_it():
    """p95 <= 400 ms exactly when at most 5% of requests take longer: +600 ms on 10% of requests breaches it."""
    rng = random.Random(4)
    bound = LimitBound(0.05, ALPHA)
    for _ in range(2000):
        bound.update(10 + (600 if rng.random() < 0.10 else 0) > 400)
    assert bound.verdict().verdict == "breach"


def test_a_rate_exactly_at_its_limit_breaches_at_most_half_alpha_of_the_time():
    rng = random.Random(5)
    breaches = 0
    for _ in range(HOLDS):
        bound = LimitBound(0.05, ALPHA)
        for _ in range(300):
            bound.update(rng.random() < 0.05)
            if bound.breached:
                breaches += 1
                break
    assert breaches / HOLDS <= three_sigma_over(ALPHA / 2, HOLDS)


def test_a_limit_of_zero_is_breached_by_the_first_failure_and_never_clearly_passed():
    bound = LimitBound(0.0, ALPHA)
    for _ in range(1000):
        bound.update(False)
    assert bound.verdict().verdict == "inconclusive"
    bound.update(True)
    assert bound.verdict().verdict == "breach"
