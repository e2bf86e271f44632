"""Sequential, anytime-valid judgement: canary against stable, and numbers against absolute limits, as requests complete.

Pure, no I/O. Every test here is an *e-process*: a running number that, when the hypothesis of "nothing wrong" holds,
is a nonnegative (super)martingale starting at 1. By Ville's inequality it reaches 1/alpha with probability at most
alpha *over the whole hold, however often it is looked at*; so the judge may look after every request and stop at
the first look that convinces it, and ``p = 1 / (largest e-value so far)`` is a sequential p-value valid at every look.
(Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist.
2021; Lindon, Sanden, Shirikian, "Rapid Regression Detection in Software Deployments through Sequential Testing",
KDD 2022; Lindon & Malek, "Anytime-Valid Inference for Multinomial Count Data", NeurIPS 2022.)

Each e-process is a Bernoulli likelihood ratio mixed over a fixed grid of alternatives (the method of mixtures with a
discrete prior): e = sum_j w_j * prod_i (theta_j / p0)^x_i ((1 - theta_j) / (1 - p0))^(1 - x_i). Every term is a test
martingale when x_i ~ Bernoulli(p0), a supermartingale when the true rate is on the null's side, so their weighted
average is too. Updating it is O(grid) per observation, constant memory.

- **Canary against stable** (``PairedComparison``): the prober sends the same schedule to both, so request i of the
  canary and request i of stable are due at the same instant and make a *pair*. A pair in which one side is clearly
  worse is *discordant*: one failed and the other did not (a failure counts as infinitely slow), or both answered
  and one was slower by more than the tolerance. When the canary is no different from stable, which side is worse in
  a discordant pair is a fair coin (the pair is exchangeable), whatever the load, the time of day or a stall of the
  prober's own machine: what hits both requests of a pair cancels. A sign test on the discordant pairs
  (``p0 = 1/2``, alternatives "canary worse") judges errors and latency in one e-process, so the whole alpha goes to
  one test and a failed request is evidence at once. Like Lindon & Malek's count test, it conditions on the events
  that carry information and needs no model of the latency distribution.
- **Absolute limits** (``LimitBound``): an error rate against its limit (x = the request failed) and a percentile
  against its limit (x = the request was slower than the limit, p0 = 1 - q/100: p95 <= L exactly when at most 5% of
  requests are slower than L, the confidence sequence for a quantile of Howard & Ramdas 2022). Two one-sided e-processes
  at alpha/2 each: **breach** when the lower confidence bound is past the limit, **pass** when the upper one is
  clearly inside it, else **inconclusive**.

**A fault that starts late** (``PairedComparison.advance``). An e-process started at the hold's start has bet through
the healthy part and mostly lost (each healthy discordant pair against stable costs its bet on "always the canary"
almost all of that bet), so after a few healthy minutes it needs far more evidence than a fresh one. So the hold's
sign test is a *mixture over start times*: FROM_START of the unit stake is bet from the hold's start, and at the k-th
boundary of RESTART_EVERY_S (k >= 1) a fresh e-process starts with ``restart_weight(k) = (1 - FROM_START) * 6 /
(pi^2 k^2)`` of it, the part not yet bet counted at face value. Each part is a test martingale under the null (1
until its start, a likelihood-ratio mixture after), so their sum is one too, starting at 1: Ville's inequality bounds
its reaching 1/alpha, at any look of the hold, by alpha. This is the rule "start k tested at level alpha * w_k,
reject when any one crosses 1/(alpha w_k)" (Ville and a union bound, sum of the w_k <= 1) made one e-process: when
any start alone crosses, w_k e_k >= 1/alpha and the sum is past it too, so it never rejects later than the union
does, and its p = 1 / max e is the valid sequential p-value of what fired, with no adjustment. It is the weighted
Shiryaev-Roberts e-detector of Shin, Ramdas & Rinaldo ("E-detectors: a nonparametric framework for sequential change
detection", New England J. Statist. Data Sci. 2024), with weights that sum to 1 instead of 1 each: theirs bounds the
mean time to a false alarm, this the probability of one in the hold, which is what ``analysis.alpha`` promises. The
recursion keeps one number per alternative (a start adds its stake to each), so a pair costs what it did, O(grid).
The price: a fault from the start needs log(1/FROM_START) more evidence (a fraction of one failed request), one
starting at the k-th boundary log(1/restart_weight(k)) more than from a fresh start (at 120 s, k = 4: about 5, some 7
failed requests), however long the healthy part; and a from-the-start e-process that did not drift still counts.
Boundaries are read from the hold's clock, which tells nothing of which side of a pair is worse.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, sub
from typing import Literal

# The sign test's alternatives, P(canary is the worse one of a discordant pair): most weight on "always the canary"
# (a broken canary: a stable request almost never fails or crawls when its canary twin did not), the rest spread
# over moderate effects. Any weights are valid; these cost log(1/0.8) of evidence for a gross fault.
SIGN_ALTERNATIVES: tuple[tuple[float, float], ...] = (
    (0.55, 0.2 / 6), (0.6, 0.2 / 6), (0.7, 0.2 / 6), (0.8, 0.2 / 6), (0.9, 0.2 / 6), (0.95, 0.2 / 6), (0.999, 0.8),
)
# An absolute limit's alternatives: the rate a multiple of the limit (above it) or a fraction of it (below it).
LIMIT_RATIOS: tuple[float, ...] = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# The hold's sign test bets FROM_START of its stake from the hold's start and the rest on fresh starts, one every
# RESTART_EVERY_S (the analysis window's default length), for a fault that starts late: see the module's docstring.
FROM_START = 0.8
RESTART_EVERY_S = 30.0
# evidence a pair is remembered for while its twin is not back (a request never answered leaves one side alone)
MAX_UNPAIRED = 10_000
# MixtureTest.update skips the log-sum-exp of a look that provably cannot raise the largest e-value: at most this many
# looks in a row, and only when that many steps' bound stays below the largest e-value by this share of its log (plus 1)
EXACT_EVERY = 64
ROUNDING_MARGIN = 1e-8


class MixtureTest:
    """One-sided e-process against ``x ~ Bernoulli(p0)``: alternatives ``theta`` with weights (summing to 1).

    ``update(x)`` adds one observation; ``log_e`` is the log of the e-value now, ``p_value`` the sequential p-value
    (1 / the largest e-value seen, at most 1). ``first``: the share of the unit stake bet from the first observation;
    the rest is kept in hand (worth what it was) until ``start`` bets a share of it from the next observation on."""

    def __init__(self, p0: float, alternatives: Sequence[tuple[float, float]], first: float = 1.0) -> None:
        if not 0.0 < p0 < 1.0:
            raise ValueError(f"p0 must be strictly between 0 and 1, not {p0}")
        total = sum(w for _, w in alternatives)
        self._up = [math.log(theta / p0) for theta, _ in alternatives]
        self._down = [math.log((1 - theta) / (1 - p0)) for theta, _ in alternatives]
        self._prior = [math.log(w / total) for _, w in alternatives]
        # log of each alternative's bets over every start so far, and last the stake in hand (which neither wins nor
        # loses: steps of 0), so that e is their sum
        self._up.append(0.0)
        self._down.append(0.0)
        self._log = [-math.inf for _ in alternatives] + [0.0]
        self.in_hand = 1.0
        self.n = 0
        self.successes = 0
        self.log_e_max = 0.0  # e starts at 1
        # for update's skipping: how far one observation can raise log e at most (the largest step of its kind), a
        # bound on log e now, the bound log e must reach before it can raise log_e_max, and looks skipped in a row
        self._rise_up, self._rise_down = max(self._up), max(self._down)
        self._ceiling = math.inf
        self._raises_from = self._raises_above(self.log_e_max)
        self._skipped = 0
        self.start(first)

    def start(self, weight: float) -> None:
        """A fresh e-process from the next observation on, with ``weight`` of the unit stake (taken from what is in
        hand): e does not change, and stays a test (super)martingale, whatever the weights so long as they sum to 1."""
        weight = min(weight, self.in_hand)
        if weight <= 0:
            return
        self.in_hand -= weight
        fresh = math.log(weight)
        bets = [_log_add(a, fresh + w) for a, w in zip(self._log, self._prior)]
        self._log = [*bets, math.log(self.in_hand) if self.in_hand > 0 else -math.inf]
        self._ceiling = math.inf  # e is unchanged, but up to rounding: the next look is computed

    def update(self, x: bool) -> None:
        """Add one observation (``log_e``: the e-value now)."""
        # called for every pair of a hold and every request of a limit: map over operator functions runs the same float
        # additions as a comprehension, at C speed
        self._log = bets = list(map(add, self._log, self._up if x else self._down))
        self.n += 1
        self.successes += bool(x)
        # Of e, only its largest value is kept (log_e_max; log_e computes e when asked). An observation multiplies each
        # term of e by its step, so e rises at most by the largest one: while the last computed log e plus every
        # largest step since stays below log_e_max, no look since can have raised it, and the log-sum-exp (most of an
        # update's cost; under the null e mostly drifts below its top) is skipped, log_e_max the same as computing it.
        # The margin: each skipped step's additions round by at most 2^-53 of the terms' size (|log e| plus at most
        # EXACT_EVERY largest steps, under 14 each for p0 in [1e-6, 1 - 1e-6]), the log-sum-exp by 1e-13 more: under
        # 1e-11 (1 + |log e|) in all, a thousandth of ROUNDING_MARGIN's.
        self._ceiling += self._rise_up if x else self._rise_down
        self._skipped += 1
        if self._ceiling < self._raises_from and self._skipped < EXACT_EVERY:
            return
        log_e = _log_sum_exp(bets)
        self._ceiling, self._skipped = log_e, 0
        if log_e > self.log_e_max:
            self.log_e_max = log_e
            self._raises_from = self._raises_above(log_e)

    @staticmethod
    def _raises_above(log_e_max: float) -> float:
        """The bound on log e from which a look may raise ``log_e_max``, rounding included."""
        return log_e_max - ROUNDING_MARGIN * (1.0 + abs(log_e_max))

    @property
    def log_e(self) -> float:
        return _log_sum_exp(self._log)

    @property
    def p_value(self) -> float:
        return min(1.0, math.exp(-self.log_e_max))

    def rejects(self, alpha: float) -> bool:
        """The null is rejected at level ``alpha``: some look's e-value reached 1/alpha."""
        return self.log_e_max >= math.log(1.0 / alpha)


def sign_test(first: float = 1.0) -> MixtureTest:
    """The canary is the worse side of a discordant pair more often than stable (null: a fair coin). ``first``: the
    share of the stake bet from the hold's start (the rest for fresh starts later: ``restart_weight``)."""
    return MixtureTest(0.5, SIGN_ALTERNATIVES, first)


def restart_weight(k: int) -> float:
    """The stake of the fresh e-process started at the ``k``-th restart boundary (k >= 1; 0 is the hold's start):
    what FROM_START leaves, spread as 6 / (pi^2 k^2), which sums to 1 over every k."""
    return (1.0 - FROM_START) * 6.0 / (math.pi**2 * k**2) if k >= 1 else FROM_START


def above(p0: float) -> MixtureTest:
    """The rate is above ``p0`` (null: at most ``p0``)."""
    thetas = sorted({min(p0 * r, (1 + p0) / 2) for r in LIMIT_RATIOS} | {p0 + (1 - p0) * g for g in (0.5, 0.9)})
    thetas = [t for t in thetas if p0 < t < 1]
    return MixtureTest(p0, [(t, 1.0) for t in thetas])


def below(p0: float) -> MixtureTest:
    """The rate is below ``p0`` (null: at least ``p0``)."""
    return MixtureTest(p0, [(p0 / r, 1.0) for r in LIMIT_RATIOS])


Side = Literal["canary", "stable"]
Decision = Literal["worse", "no difference"]


@dataclass(frozen=True)
class PairedVerdict:
    """Where the comparison stands: ``worse`` once the sign test rejects at ``alpha``; the evidence in numbers."""

    verdict: Decision
    p_value: float
    pairs: int  # pairs of requests compared (both sides answered or failed)
    discordant: int  # pairs in which one side was clearly worse
    canary_worse: int  # of those, the canary was the worse side
    by_errors: int  # discordant pairs in which the canary failed and stable did not
    canary_errors: int
    stable_errors: int

    def rates_pct(self) -> tuple[float, float]:
        """The canary's and stable's error rates over the pairs, in percent."""
        if not self.pairs:
            return 0.0, 0.0
        return 100.0 * self.canary_errors / self.pairs, 100.0 * self.stable_errors / self.pairs


class PairedComparison:
    """The canary against stable, request pair by request pair, as their answers come back.

    ``record(side, key, latency_ms)`` with ``latency_ms`` None for a failed request; ``key`` names the pair (the
    due time's index in the open-loop schedule both sides share). A pair is judged when both of its requests are back.
    ``tolerance_ms``: how much slower a canary request may be than its stable twin before the pair counts against it."""

    def __init__(self, tolerance_ms: float, alpha: float, restart_s: float = RESTART_EVERY_S) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, not {alpha}")
        if restart_s <= 0:
            raise ValueError(f"restart_s must be positive, not {restart_s}")
        self.tolerance_ms = tolerance_ms
        self.alpha = alpha
        self._rejects_at = math.log(1.0 / alpha)  # ``worse`` is read after every pair: MixtureTest.rejects' threshold
        self.restart_s = restart_s
        self._next_restart_s = restart_s  # where the next restart boundary is, as ``advance`` computes it
        self.restarts = 0  # restart boundaries passed (fresh e-processes started after the hold's start)
        self.test = sign_test(FROM_START)
        self.pairs = 0
        self.by_errors = 0
        self.canary_errors = 0
        self.stable_errors = 0
        self._waiting: dict[Side, dict[Hashable, float | None]] = {"canary": {}, "stable": {}}

    def advance(self, at_s: float) -> None:
        """The hold's clock reads ``at_s`` seconds: a fresh e-process starts at every restart boundary passed since.
        Call it before recording what completed then (the boundaries may depend on the clock, never on a pair's sign)."""
        while self._next_restart_s <= at_s:
            self.restarts += 1
            self.test.start(restart_weight(self.restarts))
            self._next_restart_s = (self.restarts + 1) * self.restart_s

    def record(self, side: Side, key: Hashable, latency_ms: float | None) -> None:
        other: Side = "stable" if side == "canary" else "canary"
        twins = self._waiting[other]
        if key in twins:
            twin = twins.pop(key)
            if side == "canary":
                self.add_pair(latency_ms, twin)
            else:
                self.add_pair(twin, latency_ms)
            return
        mine = self._waiting[side]
        mine[key] = latency_ms
        if len(mine) > MAX_UNPAIRED:  # the oldest lone request's twin is not coming back
            del mine[next(iter(mine))]

    def add_pair(self, canary_ms: float | None, stable_ms: float | None) -> None:
        """One pair of requests due at the same instant; None: that request failed."""
        self.pairs += 1
        self.canary_errors += canary_ms is None
        self.stable_errors += stable_ms is None
        worse = pair_outcome(canary_ms, stable_ms, self.tolerance_ms)
        if worse is None:
            return
        self.by_errors += worse and canary_ms is None
        self.test.update(worse)

    @property
    def worse(self) -> bool:
        """The sign test has rejected "the canary is no different" at ``alpha``, at this look or an earlier one."""
        return self.test.log_e_max >= self._rejects_at

    def verdict(self) -> PairedVerdict:
        decision: Decision = "worse" if self.worse else "no difference"
        return PairedVerdict(decision, self.test.p_value, self.pairs, self.test.n, self.test.successes,
                             self.by_errors, self.canary_errors, self.stable_errors)


def pair_outcome(canary_ms: float | None, stable_ms: float | None, tolerance_ms: float) -> bool | None:
    """True: the canary is clearly the worse of the pair; False: stable is; None: neither (a tie, within tolerance,
    or both failed). A failed request (None) is worse than any answer."""
    if canary_ms is None or stable_ms is None:
        return None if canary_ms is None and stable_ms is None else canary_ms is None
    if canary_ms > stable_ms + tolerance_ms:
        return True
    if stable_ms > canary_ms + tolerance_ms:
        return False
    return None


LimitDecision = Literal["breach", "pass", "inconclusive"]


@dataclass(frozen=True)
class LimitVerdict:
    """An absolute limit judged with confidence bounds: which of breach / pass / inconclusive, and the evidence."""

    verdict: LimitDecision
    p_breach: float  # sequential p-value of "within the limit" (small: breached)
    p_within: float  # sequential p-value of "at or past the limit" (small: clearly inside)
    n: int
    over: int  # observations past the limit (failed requests, or requests slower than a latency limit)


class LimitBound:
    """A rate against a limit, anytime-valid: ``limit`` the largest acceptable fraction of observations past it
    (an error-rate limit of 1% is 0.01; a p95 limit is 0.05 of requests slower than the limit's milliseconds).

    Breach when the rate's lower confidence bound (level alpha/2) is above the limit, pass when its upper bound is
    below it, else inconclusive. A limit of 0 is breached by the first observation past it and never clearly passed."""

    def __init__(self, limit: float, alpha: float) -> None:
        self.limit, self.alpha = limit, alpha
        self._above = above(limit) if 0 < limit < 1 else None
        self._below = below(limit) if 0 < limit < 1 else None
        self._tests = [test for test in (self._above, self._below) if test is not None]
        self._breach_at = math.log(1.0 / (alpha / 2))  # ``breached`` may be read after every update: rejects' threshold
        self.n = 0
        self.over = 0

    def update(self, past_limit: bool) -> None:
        self.n += 1
        self.over += past_limit
        for test in self._tests:
            test.update(past_limit)

    @property
    def breached(self) -> bool:
        """The lower confidence bound is past the limit (at this look or an earlier one)."""
        if self._above is None:
            return self.limit <= 0 and self.over > 0
        return self._above.log_e_max >= self._breach_at

    def verdict(self) -> LimitVerdict:
        half = self.alpha / 2
        if self._above is None or self._below is None:  # a limit of 0 (or 1): only a count past it says anything
            breached = self.limit <= 0 and self.over > 0
            return LimitVerdict("breach" if breached else "inconclusive", 0.0 if breached else 1.0, 1.0, self.n, self.over)
        decision: LimitDecision = ("breach" if self._above.rejects(half) else
                                   "pass" if self._below.rejects(half) else "inconclusive")
        return LimitVerdict(decision, self._above.p_value, self._below.p_value, self.n, self.over)


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)), without overflow."""
    top, low = (a, b) if a >= b else (b, a)
    return top if low == -math.inf else top + math.log1p(math.exp(low - top))


def _log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    # sum(exp(v - top) for v in values), in the same order, without a generator's per-value cost
    return top + math.log(sum(map(math.exp, map(sub, values, repeat(top)))))
