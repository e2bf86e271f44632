"""Canary against stable under the same load: is the canary worse, better, or not measurably different?

Pure functions. Latencies: a two-sided Mann-Whitney U test on the two latency samples (normal
approximation with tie correction; no assumption about the shape of latency distributions), plus the
probability that a canary request is slower than a stable one. Errors: a two-proportion z test.

"worse" needs both a significant difference (p < ``alpha``) and one that matters: the canary's p95 above
stable's by more than ``tolerance_ms`` (default: 1 ms or 10% of stable's p95, whichever is larger), or
its error rate significantly higher by at least half a percentage point. Equal targets thus read as "no
difference" even when a huge sample makes a microscopic shift significant.

A hold with a tolerance (the plan's baseline ``p95_increase_ms``) is judged *sequentially* instead (``HoldJudge``,
services/prober/sequential.py): the request pairs are judged as they complete, anytime-valid at ``alpha`` over the
whole hold, and the canary is worse as soon as the evidence suffices and the difference matters as above. The
fixed-horizon test then only describes (p95 delta, P(slower)); the verdict is the sequential judge's. A fault that
starts late is diluted in the hold's totals by the healthy part before it: the difference also matters when it does
over a stretch since one of the last restart boundaries (``matters_since``: with confidence bounds, a stretch being
short), and the verdict then gives that stretch's numbers and says since when.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from golive.services.prober.sequential import RESTART_EVERY_S, PairedComparison, Side
from golive.services.prober.stats import LatencyWindow
from golive.shared.events import Comparison
from golive.shared.judge import error_rate_pct, number
from golive.shared.limits import rate_bounds

ALPHA = 0.01
MIN_SAMPLES = 20
MIN_ERROR_RATE_DELTA_PCT = 0.5
# restart segments of the hold whose requests the sequential judge keeps (two minutes at 30 s): a fault whose evidence
# starts earlier than that is measured on the hold's totals, by then less diluted
KEPT_SEGMENTS = 4


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(two-sided p value, probability that a value of ``a`` exceeds one of ``b``, ties counting half)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0, 0.5
    combined = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    n = n1 + n2
    rank_sum_a = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and combined[j + 1][0] == combined[i][0]:
            j += 1
        average_rank = (i + j) / 2 + 1
        ties = j - i + 1
        tie_term += ties**3 - ties
        rank_sum_a += average_rank * sum(1 for k in range(i, j + 1) if combined[k][1] == 0)
        i = j + 1
    u_a = rank_sum_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0, u_a / (n1 * n2)
    z = (abs(u_a - mean) - 0.5) / math.sqrt(variance)  # continuity correction
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return min(1.0, p), u_a / (n1 * n2)


def two_proportions(errors_a: int, total_a: int, errors_b: int, total_b: int) -> float:
    """Two-sided p value of the difference between two error rates (pooled z test)."""
    if total_a == 0 or total_b == 0:
        return 1.0
    pooled = (errors_a + errors_b) / (total_a + total_b)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (errors_a / total_a - errors_b / total_b) / math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    return math.erfc(abs(z) / math.sqrt(2))


def compare(probe: LatencyWindow, baseline: LatencyWindow, tolerance_ms: float | None = None, alpha: float = ALPHA) -> Comparison:
    """The canary (``probe``) against stable (``baseline``), both windows of the same load over the same time."""
    a = probe.reservoir.values if probe.reservoir else []
    b = baseline.reservoir.values if baseline.reservoir else []
    p95_delta = probe.percentile_ms(95) - baseline.percentile_ms(95)
    error_delta = probe.error_rate_pct() - baseline.error_rate_pct()
    tolerance = tolerance_ms if tolerance_ms is not None else max(1.0, 0.10 * baseline.percentile_ms(95))
    p_latency, prob_slower = mann_whitney(a, b)
    p_errors = two_proportions(probe.error_count, probe.samples, baseline.error_count, baseline.samples)
    numbers = (f"p95 {probe.percentile_ms(95):.2f} vs {baseline.percentile_ms(95):.2f} ms ({p95_delta:+.2f}), "
               f"errors {probe.error_rate_pct():.2f}% vs {baseline.error_rate_pct():.2f}%, "
               f"p={p_latency:.3g}, P(slower)={prob_slower:.2f}, {len(a)} vs {len(b)} samples")
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        verdict, why = "no difference", f"too few samples to tell (need {MIN_SAMPLES} each)"
    elif (p_latency < alpha and prob_slower > 0.5 and p95_delta > tolerance) or (
        p_errors < alpha and error_delta >= MIN_ERROR_RATE_DELTA_PCT
    ):
        verdict, why = "worse", f"significant at p<{alpha:g} beyond {tolerance:.2f} ms tolerance"
    elif (p_latency < alpha and prob_slower < 0.5 and -p95_delta > tolerance) or (
        p_errors < alpha and -error_delta >= MIN_ERROR_RATE_DELTA_PCT
    ):
        verdict, why = "better", f"significant at p<{alpha:g} beyond {tolerance:.2f} ms tolerance"
    else:
        verdict, why = "no difference", f"no significant difference beyond {tolerance:.2f} ms tolerance"
    return Comparison(
        verdict=verdict, p95_delta_ms=round(p95_delta, 3), error_rate_delta_pct=round(error_delta, 3),
        p_value=p_latency, prob_slower=round(prob_slower, 4), samples=len(a), baseline_samples=len(b),
        reason=f"{verdict}: {why}; {numbers}",
    )


@dataclass(frozen=True)
class Decision:
    """The sequential judge found the canary worse: why in numbers, its sequential p-value, and when."""

    reason: str
    p_value: float
    at_s: float  # seconds into the hold (after its warm-up)


class Sample(Protocol):
    """What the judge reads of a side's requests: a LatencyWindow, or the judge's recent requests."""

    @property
    def count(self) -> int: ...  # answered requests

    @property
    def samples(self) -> int: ...  # answered and failed

    def percentile_ms(self, q: float) -> float: ...

    def error_rate_pct(self) -> float: ...


class Requests:
    """One side's requests of a stretch of the hold: the answered ones' latencies, and how many failed.

    The latencies are kept sorted, brought up to date when read: once the sign test has rejected, the judge reads a
    percentile and a count of slow answers of each stretch after every request (a sort and a scan each time cost
    milliseconds), and until then it reads none (sorting each one as it came would cost every request of the hold)."""

    def __init__(self) -> None:
        self._sorted: list[float] = []
        self._unsorted: list[float] = []  # added since the last read
        self.failed = 0

    def add(self, latency_ms: float | None) -> None:
        if latency_ms is None:
            self.failed += 1
        else:
            self._unsorted.append(latency_ms)

    @property
    def latencies_ms(self) -> list[float]:
        """The answered requests' latencies, sorted."""
        if self._unsorted:
            if len(self._unsorted) <= 16:  # a request or two since the last read: each moves a part of the list
                for ms in self._unsorted:
                    bisect.insort(self._sorted, ms)
            else:  # the first read, or one after long: a sort, which merges the sorted run with the new ones
                self._sorted += self._unsorted
                self._sorted.sort()
            self._unsorted = []
        return self._sorted

    @property
    def count(self) -> int:
        return len(self._sorted) + len(self._unsorted)

    @property
    def samples(self) -> int:
        return self.count + self.failed

    def percentile_ms(self, q: float) -> float:
        """The nearest-rank percentile (the value at rank ceil(q% of n)), as the histogram reads it."""
        ordered = self.latencies_ms
        if not ordered:
            return 0.0
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def slower_than(self, ms: float) -> int:
        """How many answers took longer than ``ms``."""
        ordered = self.latencies_ms
        return len(ordered) - bisect.bisect_right(ordered, ms)

    def error_rate_pct(self) -> float:
        return error_rate_pct(self.count, self.failed)

    def copy(self) -> Requests:
        same = Requests()
        same._sorted, same.failed = list(self.latencies_ms), self.failed
        return same


class Segments:
    """Each side's requests per restart segment of the hold, the last KEPT_SEGMENTS of them: a fault that started late
    is measured on the stretches since their boundaries when the hold's totals, diluted by the healthy part, do not
    show it.

    What is kept is each stretch whole (a segment's requests and every later segment's), each request added to every
    stretch it is part of (at most KEPT_SEGMENTS): once the sign test has rejected, the judge looks at every stretch
    after every request, and merging the segments then cost a copy and a sort of minutes of requests each look."""

    def __init__(self) -> None:
        self.since: dict[int, dict[Side, Requests]] = {}  # segment: each side's requests from its start on

    def add(self, segment: int, side: Side, latency_ms: float | None) -> None:
        if segment not in self.since:
            # a segment named after a later one (never by HoldJudge, whose segments only grow) starts with the later's
            later = min((k for k in self.since if k > segment), default=None)
            self.since[segment] = ({"canary": Requests(), "stable": Requests()} if later is None else
                                   {name: requests.copy() for name, requests in self.since[later].items()})
            for old in [k for k in self.since if k <= segment - KEPT_SEGMENTS]:
                del self.since[old]
        for start, stretch in self.since.items():
            if start <= segment:
                stretch[side].add(latency_ms)

    def stretches(self) -> list[tuple[int, Requests, Requests]]:
        """(segment, the canary's requests from it on, stable's): for each segment kept, the latest first."""
        return [(segment, self.since[segment]["canary"], self.since[segment]["stable"])
                for segment in sorted(self.since, reverse=True)]


class P95Gap:
    """The latency half of a difference that matters on the hold's totals (the canary's p95 above stable's by more
    than the tolerance; ``errors_matter`` is the other), exactly as two percentile reads say it, without reading both
    histograms at every request.

    Reading a p95 off a hold's histogram walks it in Python, about a millisecond; once the sign test has rejected but
    the difference is within the tolerance, the judge asks after every request. A read here also reads, in the same
    walk, the order statistics that bound each p95 over the next ``k`` requests of its side, for k in BUDGETS: adding
    k values to n, the nearest rank r(n) = round(0.95 n) moves to r(n + k), and the value there lies between the old
    values at ranks r(n + k) - k (at most k new values below it) and r(n + k) (the old ones at or below that rank are
    all still there); r(n + k) - k only falls with k and r(n + k) only rises, so the old values at r(n + K) - K and
    r(n + K) bound every p95 up to K more requests. While the canary's upper bound minus stable's lower bound is
    within the tolerance, the gap is too, provably: it is not read again until a side has had more requests than the
    largest budget that showed it (a gap near the tolerance is thus read after every request, as before; one far
    from it, rarely). The windows only grow through a hold: a window that shrank, or another one, is read afresh."""

    BUDGETS = tuple(2**i for i in range(17))  # 1 .. 65,536 requests

    def __init__(self, tolerance_ms: float) -> None:
        self.tolerance_ms = tolerance_ms
        # the windows last read (their histograms), their counts then, and the counts up to which the gap is within
        self._read: tuple[object, object, int, int, int, int] | None = None

    def exceeds(self, probe: LatencyWindow, baseline: LatencyWindow) -> bool:
        if probe.count == 0:
            return False
        if self._read is not None:
            canary, stable, canary_from, stable_from, canary_upto, stable_upto = self._read
            if (canary is probe.histogram and stable is baseline.histogram
                    and canary_from <= probe.count <= canary_upto and stable_from <= baseline.count <= stable_upto):
                return False
        self._read = None
        n_canary, n_stable = probe.count, baseline.count
        # the p95s at the ranks the histograms' own percentile reads use (so these are percentile_ms(95) exactly), and
        # each budget's bounds, one rank wider each way (robust to a rounding of the rank other than round half up)
        canary_rank = probe.histogram.get_target_count_at_percentile(95)
        uppers = {k: _p95_rank(n_canary + k) + 1 for k in self.BUDGETS if _p95_rank(n_canary + k) + 1 <= n_canary}
        canary_ms = probe.values_at_ranks([canary_rank, *uppers.values()])
        if n_stable:
            stable_rank = baseline.histogram.get_target_count_at_percentile(95)
            lowers = {k: _p95_rank(n_stable + k) - k - 1 for k in uppers}
            stable_ms = baseline.values_at_ranks([stable_rank, *(r for r in lowers.values() if r >= 1)])
            stable_p95 = stable_ms[stable_rank]
        else:  # stable has no answer yet: its p95 reads 0, as it will at least
            lowers, stable_ms, stable_p95 = {k: 0 for k in uppers}, {}, 0.0
        if canary_ms[canary_rank] - stable_p95 > self.tolerance_ms:
            return True
        budget = 0
        for k, upper in uppers.items():  # budgets in increasing order: each bound wider than the last
            if canary_ms[upper] - (stable_ms[lowers[k]] if lowers[k] >= 1 else 0.0) > self.tolerance_ms:
                break
            budget = k
        self._read = (probe.histogram, baseline.histogram, n_canary, n_stable, n_canary + budget, n_stable + budget)
        return False


def _p95_rank(n: int) -> int:
    """The rank of a p95 among ``n`` values, as HdrHistogram's ``get_target_count_at_percentile(95)`` puts it."""
    return max(int(95 * n / 100 + 0.5), 1)


class HoldJudge:
    """The sequential judge of one check's canary against its stable twin through a hold (pure: the caller feeds it).

    Requests are paired by their place in the schedule both targets share: the open-loop due time's index, or the
    request's number in a closed loop. ``record`` returns the Decision the first time the canary is found worse beyond
    the tolerance (and the difference matters, ``errors_matter`` or ``P95Gap``, over the hold so far or over its last restart segments:
    a fault that starts late is judged where it is), else None. ``now`` is the judge's clock: the sign test starts a
    fresh e-process at every ``restart_s`` of it (services/prober/sequential.py)."""

    def __init__(self, tolerance_ms: float, alpha: float, rate: float | None, counted_from: float,
                 restart_s: float = RESTART_EVERY_S) -> None:
        self.paired = PairedComparison(tolerance_ms, alpha, restart_s)
        self.segments = Segments()
        self.tolerance_ms, self.rate, self.counted_from = tolerance_ms, rate, counted_from
        self.decision: Decision | None = None
        self.p95_gap = P95Gap(tolerance_ms)
        self._sent: dict[Side, int] = {"canary": 0, "stable": 0}

    def record(self, side: Side, start: float, latency_ms: float | None, now: float,
               probe: LatencyWindow, baseline: LatencyWindow) -> Decision | None:
        if self.rate is not None:
            key = round((start - self.counted_from) * self.rate)
        else:
            key, self._sent[side] = self._sent[side], self._sent[side] + 1
        return self.record_pair(side, key, latency_ms, now, probe, baseline)

    def record_pair(self, side: Side, key: int, latency_ms: float | None, now: float,
                    probe: LatencyWindow, baseline: LatencyWindow) -> Decision | None:
        """``record`` with the pair named by the caller (``key``: the same for both requests of a pair)."""
        at_s = now - self.counted_from
        self.paired.advance(at_s)
        self.paired.record(side, key, latency_ms)
        self.segments.add(self.paired.restarts, side, latency_ms)
        if self.decision is not None or not self.paired.worse:
            return None
        # the difference matters over the hold: the p95s read only when the gap could have changed sides (P95Gap)
        if errors_matter(probe, baseline) or self.p95_gap.exceeds(probe, baseline):
            since, canary, stable = 0.0, probe, baseline
        else:  # a fault that started late: measured since a restart boundary kept, the latest first
            stretch = self.late_stretch(baseline)
            if stretch is None:
                return None
            since, canary, stable = stretch
        self.decision = Decision(self.reason(canary, stable, at_s, since, probe.samples + baseline.samples),
                                 self.paired.test.p_value, at_s)
        return self.decision

    def late_stretch(self, baseline: Sample) -> tuple[float, Requests, Requests] | None:
        """(since, in seconds into the hold; the canary's requests; stable's) of the latest stretch since a restart
        boundary over which the difference matters (``matters_since``); None when none does."""
        stretches = self.segments.stretches()
        if not stretches:
            return None
        # stable's p95 over every segment kept (the longest stretch): a sort of a few minutes of requests, where the
        # hold's histogram costs milliseconds a look; its error rate is the hold's, a count
        reference = max(baseline.error_rate_pct(), stretches[-1][2].error_rate_pct()), stretches[-1][2].percentile_ms(95)
        for segment, canary, stable in stretches:
            if matters_since(canary, stable, reference, self.tolerance_ms, self.paired.alpha):
                return segment * self.paired.restart_s, canary, stable
        return None

    def reason(self, probe: Sample, baseline: Sample, at_s: float, since_s: float = 0.0, requests: int | None = None) -> str:
        """``canary error rate 5.1% vs stable 0.2%, sequential p = 0.0004 after 812 requests, 6.2 s into the hold``:
        by errors when failed canary requests carried most of the evidence, else by latency. The numbers are those
        of ``probe`` and ``baseline``: the hold's, or (``since_s`` > 0) those since that many seconds into it, said so;
        ``requests``: all the sign test has seen (both sides, the whole hold), by default the numbers' own."""
        verdict = self.paired.verdict()
        if verdict.by_errors * 2 >= verdict.canary_worse:
            what = f"canary error rate {probe.error_rate_pct():.1f}% vs stable {baseline.error_rate_pct():.1f}%"
        else:
            what = (f"canary p95 {number(probe.percentile_ms(95))} ms vs stable {number(baseline.percentile_ms(95))} ms "
                    f"(tolerance {number(self.tolerance_ms)} ms)")
        if since_s > 0:
            what += f" since {since_s:.0f} s"
        seen = probe.samples + baseline.samples if requests is None else requests
        return f"{what}, sequential p = {verdict.p_value:.2g} after {seen:,} requests, {at_s:.1f} s into the hold"


def errors_matter(probe: Sample, baseline: Sample) -> bool:
    """The error half of a difference worth failing a stage for: the canary's error rate higher than stable's by at
    least MIN_ERROR_RATE_DELTA_PCT points (the latency half, its p95 above stable's by more than the tolerance, is
    P95Gap's on the hold's totals and matters_since's on a stretch)."""
    return probe.error_rate_pct() - baseline.error_rate_pct() >= MIN_ERROR_RATE_DELTA_PCT


def matters_since(canary: Requests, stable: Requests, reference: tuple[float, float], tolerance_ms: float,
                  alpha: float) -> bool:
    """The difference matters (``errors_matter``, ``P95Gap``) over a stretch of the hold since a restart boundary,
    with confidence: a stretch may be short, and a point estimate on a few requests looked at after every one would
    find a difference that does not matter. The canary's error rate is higher than stable's (the stretch's or
    ``reference``'s, the larger) by MIN_ERROR_RATE_DELTA_PCT points at its lower ``1 - alpha`` bound, or more than 5%
    of its answers in the stretch, at that bound, are slower than stable's p95 (the larger again) plus the tolerance:
    the canary's p95 is past it."""
    reference_errors_pct, reference_p95_ms = reference
    stable_errors_pct = max(stable.error_rate_pct(), reference_errors_pct)
    # the bounds cost a root search each: only where the point estimate is past the line can the bound be
    if canary.error_rate_pct() - stable_errors_pct >= MIN_ERROR_RATE_DELTA_PCT:
        errors_low, _ = rate_bounds(canary.samples, canary.failed, alpha)
        if 100 * errors_low - stable_errors_pct >= MIN_ERROR_RATE_DELTA_PCT:
            return True
    slow = max(stable.percentile_ms(95), reference_p95_ms) + tolerance_ms
    slower = canary.slower_than(slow)
    if slower <= 0.05 * canary.count:
        return False
    slow_low, _ = rate_bounds(canary.count, slower, alpha)
    return slow_low > 0.05


def sequential_comparison(fixed: Comparison, judge: HoldJudge) -> Comparison:
    """The hold's comparison as the sequential judge decided it; the fixed-horizon test's numbers describe it."""
    verdict = judge.paired.verdict()
    if judge.decision is not None:
        return fixed.model_copy(update={"verdict": "worse", "p_value": judge.decision.p_value, "method": "sequential-sign",
                                        "reason": f"worse: {judge.decision.reason}"})
    # one-sided: the judge looks for a worse canary only, so "better" is not a verdict it can give at its alpha
    why = (f"no difference: no sequential evidence of a worse canary beyond {number(judge.tolerance_ms)} ms tolerance "
           f"(sequential p = {verdict.p_value:.2g} over {verdict.pairs:,} request pairs, alpha {judge.paired.alpha:g})")
    numbers = fixed.reason.split("; ", 1)[1] if "; " in fixed.reason else ""
    return fixed.model_copy(update={"verdict": "no difference", "p_value": verdict.p_value, "method": "sequential-sign",
                                    "reason": "; ".join(part for part in (why, numbers) if part)})
