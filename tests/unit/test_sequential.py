"""The sequential judge (services/prober/sequential.py): valid at every look on healthy (A/A) streams, quick on bad ones,
and as quick on a fault that starts late in a hold (a fresh e-process at every restart boundary).

The false-alarm checks are Monte Carlo with fixed seeds: the bound is alpha, the assertion alpha + 3 standard errors
of the simulated rate, with the judge looking after every pair of every simulated hold."""

from __future__ import annotations

import copy
import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.services.prober.sequential import (
    FROM_START,
    SIGN_ALTERNATIVES,
    LimitBound,
    MixtureTest,
    PairedComparison,
    above,
    below,
    pair_outcome,
    restart_weight,
    sign_test,
)

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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_a_sign_test_with_fresh_starts_starts_at_one_and_stays_a_martingale_under_its_null(history):
    """A fresh start moves stake from hand to bets and leaves e as it was; each observation keeps E[e] where it was."""
    test = sign_test(FROM_START)
    assert test.log_e == pytest.approx(0.0, abs=1e-12)
    restarts = 0
    for x, restart in history:
        if restart:
            restarts += 1
            before = test.log_e
            test.start(restart_weight(restarts))
            assert test.log_e == pytest.approx(before, rel=1e-9, abs=1e-12)
        yes, no = copy.deepcopy(test), copy.deepcopy(test)
        yes.update(True)
        no.update(False)
        assert 0.5 * math.exp(yes.log_e) + 0.5 * math.exp(no.log_e) == pytest.approx(math.exp(test.log_e), rel=1e-9)
        test.update(x)


def test_the_restart_weights_with_the_start_share_the_whole_stake():
    assert FROM_START + sum(restart_weight(k) for k in range(1, 200_000)) == pytest.approx(1.0, abs=1e-5)
    assert restart_weight(0) == FROM_START and all(restart_weight(k) > restart_weight(k + 1) > 0 for k in range(1, 50))


def test_pair_outcome_ranks_a_failure_below_any_answer_and_ignores_differences_within_tolerance():
    assert pair_outcome(None, 5.0, 50) is True
    assert pair_outcome(5.0, None, 50) is False
    assert pair_outcome(None, None, 50) is None
    assert pair_outcome(60.0, 5.0, 50) is True and pair_outcome(5.0, 60.0, 50) is False
    assert pair_outcome(40.0, 5.0, 50) is None


def aa_false_alarms(seed: int, pairs: int, tolerance_ms: float, error_rate: float, stalls: bool,
                    restart_every: int = 10**9) -> float:
    """Healthy holds: canary and stable drawn from the same latency law (rounded to 0.1 ms: ties happen), the same
    error rate, and with ``stalls`` a busy prober machine that now and then delays both requests of a pair alike.
    The hold's clock reads one second per pair; a fresh e-process starts every ``restart_every`` of them."""
    rng = random.Random(seed)
    alarms = 0
    for _ in range(HOLDS):
        judge = PairedComparison(tolerance_ms, ALPHA, restart_s=restart_every)
        for i in range(pairs):
            judge.advance(float(i))
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


def test_a_healthy_canary_stays_within_alpha_over_a_long_hold_with_a_fresh_e_process_every_few_pairs():
    """Every pair a coin flip (tolerance 0) and a restart every 10 pairs: 39 fresh e-processes in a hold, each a bet
    that the canary turned bad then. Their stakes and the start's sum to 1, so the hold's false alarms stay within
    alpha, where testing each fresh one at alpha would let them add up to as much as 40 alpha."""
    assert aa_false_alarms(11, 400, 0.0, 0.0, False, restart_every=10) <= three_sigma_over(ALPHA, HOLDS)


def late_fault_pairs(seed: int, onset_pairs: int, canary_error_rate: float) -> int | None:
    """Pairs after the onset until the judge finds the canary worse. Before the onset (15 pairs a second) every pair
    is a coin flip (tolerance 0, continuous latencies): the e-processes started then bet and mostly lose. From the onset
    the canary fails ``canary_error_rate`` of its requests and answers the others as fast as its stable twin."""
    rng = random.Random(seed)
    judge = PairedComparison(0.0, ALPHA)
    for i in range(onset_pairs + 3000):
        judge.advance(i / 15)
        stable = 10 * rng.lognormvariate(0, 0.5)
        if i < onset_pairs:
            judge.add_pair(10 * rng.lognormvariate(0, 0.5), stable)
        else:
            judge.add_pair(None if rng.random() < canary_error_rate else stable, stable)
        if judge.worse:
            return i + 1 - onset_pairs if i >= onset_pairs else None
    return None


def test_a_canary_failing_every_request_late_in_a_hold_is_worse_within_the_fresh_starts_bound():
    """From the boundary at 120 s on, every pair is against the canary: the e-process started there (stake
    restart_weight(4) times 0.8 on "always the canary") doubles with each, so it reaches 1/alpha within ``bound`` pairs
    whatever the two healthy minutes did to the e-processes started before."""
    theta, weight = SIGN_ALTERNATIVES[-1]
    bound = math.ceil(math.log(1 / (ALPHA * restart_weight(4) * weight)) / math.log(2 * theta))
    found = [late_fault_pairs(seed, 1800, 1.0) for seed in range(10)]
    assert all(n is not None and n <= bound for n in found), (found, bound)


def test_a_canary_failing_five_percent_late_in_a_hold_is_worse_within_twice_and_a_half_the_time_from_the_start():
    """5% errors from 120 s, after 1,800 coin-flip pairs. From the start, the hold's e-process needs log(1/(alpha
    FROM_START 0.8)) of evidence (about 7 failed canary requests); the one started at 120 s, log(1/restart_weight(4))
    more, about as much again: twice the failures, so about twice the pairs. The drifted e-processes alone would need
    hundreds of failures (their bets on "always the canary" lost to the first pair against stable)."""
    late = [late_fault_pairs(seed, 1800, 0.05) for seed in range(15)]
    start = [late_fault_pairs(seed, 0, 0.05) for seed in range(15)]
    assert all(n is not None for n in late + start), (late, start)
    assert statistics.median(late) <= 2.5 * statistics.median(start), (late, start)  # type: ignore[type-var]


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


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0), st.booleans()), min_size=1, max_size=400),
       st.sampled_from(["hold", "above", "below"]), st.floats(min_value=0.001, max_value=0.5))
def test_the_largest_e_value_is_the_same_as_computing_e_at_every_look(history, kind, p0):
    """update skips computing e where it cannot have reached its largest value: log_e_max is still, to the last bit,
    the largest log e of every look."""
    test = sign_test(FROM_START) if kind == "hold" else above(p0) if kind == "above" else below(p0)
    largest, restarts = 0.0, 0
    for u, restart in history:
        if restart and kind == "hold" and u < 0.1:
            restarts += 1
            test.start(restart_weight(restarts))
        test.update(u < (0.5 if kind == "hold" else p0) * (1.5 if restart else 1.0))
        largest = max(largest, test.log_e)
        assert test.log_e_max == largest
