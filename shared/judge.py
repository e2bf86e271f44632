"""The judge of thresholds: measured numbers against their limits, one verdict with its numbers and one wording.

Pure, and shared: the prober judges a probe's totals with it, the coordinator each window of a stage's hold
(services/coordinator/analysis.py), so a window and a hold made of the same numbers get the same verdict in
the same words ("p95 512 ms > 400 ms over 1,204 requests").

- A request limit (p95_ms, p99_ms, error_rate_pct) is judged on at least ``min_samples`` requests, answered or
  failed; a latency limit only when a request succeeded (no answer has no latency, and a p95 of 0 would pass).
- **Noise cannot trip a request limit**: numbers that carry confidence bounds (``confidence``, from the prober:
  shared/limits.py) are a breach only when the bound is past the limit (the error rate's lower bound above it, the
  p95's lower order statistic slower than it); past the limit as measured but not beyond noise, they are
  inconclusive ("p95 412 ms > 400 ms but not beyond noise: 99% bound 380-445 ms over 64 requests"); within it as
  measured, a pass. Not only when *clearly* inside (the upper bound within the limit, ``clearly_inside``): that
  takes 528 clean requests for an error rate of 1% at 99% and 104 for a p95, where the runbook's 20/s fills a
  rehearsal's 2 s window with 40, so every healthy window would be inconclusive and every healthy run would pause.
  An error-rate limit of 0 is a count, exact: any failure breaches it. Numbers without bounds (events from before
  them) are held to their point estimates, as then.
- A gauge limit (GAUGES: replica lag, WAL lag, connection use, long transactions) is judged on the worst value
  measured. A gauge never measured is no evidence, of health or of a breach; nor is one that some sample could
  not read (``unread``: a replica down, a privilege missing): its limit is inconclusive, with why, unless a
  value that was read is already over it.
- The verdict: **fail** when a number judged is over its limit; else **inconclusive** when something could not
  be judged (too few requests, no successful request, a gauge never measured); else **pass**.

- A window in which the prober itself ran late by more than PROBER_LAG_TOLERANCE_MS (``prober_lag_ms``: a busy
  machine, a slow callback; services/prober/loop_lag.py) is unreliable: its request limits are not judged, and it
  is **inconclusive** ("prober overloaded: lag 1,480 ms"), never a failure of the target; a gauge over its limit
  (measured by the server, not timed by the prober) still fails.

What a caller does with an inconclusive verdict is its own rule (analysis.inconclusive for a window; the saga
for a hold's totals). The baseline comparison (p95_increase_ms) is the prober's: it compares two targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from golive.shared.events import Finding, LatencySummary, Verdict
from golive.shared.limits import confidence_words, rate_bounds
from golive.shared.plan.checks import Thresholds

# The guard gauges (a pg_health probe measures them; services/prober/pg_health.py): name -> (words, unit).
GAUGES: dict[str, tuple[str, str]] = {
    "replica_lag_s": ("replica lag", " s"),
    "wal_lag_bytes": ("WAL lag", " bytes"),
    "connection_use_pct": ("connection use", "%"),
    "long_transactions": ("long transactions", ""),
}
# The request limits: name -> (words, unit).
REQUEST_LIMITS: dict[str, tuple[str, str]] = {
    "p95_ms": ("p95", " ms"),
    "p99_ms": ("p99", " ms"),
    "error_rate_pct": ("error rate", "%"),
}
# ``unread`` under this key: the requests themselves could not be read (a prometheus probe whose server did not
# answer, or refused a query): every request limit is inconclusive with why, unless a number read is over it
REQUESTS_UNREAD = "requests"
_WORDS = {**REQUEST_LIMITS, **GAUGES, "p95_increase_ms": ("p95 increase over the baseline", " ms")}

# How late the prober's own event loop may run before its timing of requests is not to be trusted. Not lower: on a
# busy 2-core machine the loop runs 100-450 ms late now and then, and at 100 ms nearly every request of a short
# compressed hold was left out (the runbook matrix's healthy stage 1 ended inconclusive).
PROBER_LAG_TOLERANCE_MS = 500.0

# A verdict as a run's story shows it (`golive run`, the report's timeline).
SHOWN: dict[Finding, str] = {"pass": "passed", "fail": "FAILED", "inconclusive": "inconclusive"}


def error_rate_pct(count: int, errors: int) -> float:
    """Failed requests among all requests (``count`` answered plus ``errors`` failed), in percent; 0 without any."""
    total = count + errors
    return 100.0 * errors / total if total else 0.0


@dataclass(frozen=True)
class Reading:
    """One limit and the number it is held to; ``judged`` False: no evidence (too few requests, no number)."""

    metric: str
    limit: float
    observed: float | None  # None: never measured (a gauge no sample read)
    judged: bool
    unread: str | None = None  # a gauge some sample could not read: why
    # the number's confidence bounds (low, high; None: too few requests for that side) at ``confidence``; None: the
    # number is held to its limit as it is (a gauge, a count, or numbers from before the bounds)
    bound: tuple[float | None, float | None] | None = None
    confidence: float = 0.0

    @property
    def over(self) -> bool:
        """Past the limit: beyond noise when the number has bounds (its lower bound is past the limit)."""
        if not self.judged or self.observed is None:
            return False
        if self.bound is None:
            return self.observed > self.limit
        return self.bound[0] is not None and self.bound[0] > self.limit

    @property
    def inside(self) -> bool:
        """Within the limit as measured (a pass: see the module's docstring for why not only when clearly inside)."""
        return self.judged and self.observed is not None and self.observed <= self.limit

    @property
    def clearly_inside(self) -> bool:
        """Within the limit beyond noise: the upper bound is inside it (or, without bounds, the number is)."""
        if self.bound is None:
            return self.inside
        return self.inside and self.bound[1] is not None and self.bound[1] <= self.limit

    @property
    def noisy(self) -> bool:
        """Past the limit as measured, but not beyond noise: the requests cannot tell a breach from bad luck."""
        return self.judged and self.observed is not None and self.observed > self.limit and not self.over

    @property
    def conclusive(self) -> bool:
        """Judged on everything it should have been: a pass can rest on it."""
        return self.judged and self.unread is None and not self.noisy

    def words(self) -> str:
        if self.unread is not None and not self.over:
            return f"{_WORDS.get(self.metric, (self.metric, ''))[0]} unread ({self.unread})"
        said = reading_words(self.metric, self.observed, self.limit)
        if self.bound is None or not self.judged:
            return said
        if self.over:
            return f"{said} ({self.bound_words()})"
        if self.noisy:
            return f"{said} but not beyond noise: {self.bound_words()}"
        return said

    def bound_words(self) -> str:
        """``99% bound 380-445 ms``; a side the requests were too few for is said so."""
        assert self.bound is not None
        unit = _WORDS.get(self.metric, (self.metric, ""))[1]
        low, high = self.bound
        level = confidence_words(self.confidence)
        if low is None and high is None:
            return f"too few requests for a {level} bound"
        if high is None:
            return f"{level} bound {number(low or 0.0)}{unit} and up (too few requests for an upper bound)"
        if low is None:
            return f"{level} bound up to {number(high)}{unit}"
        return f"{level} bound {number(low)}-{number(high)}{unit}"


@dataclass(frozen=True)
class Judgement:
    """The verdict on some numbers, the readings it rests on, and why in words a rollback message can quote."""

    verdict: Finding
    why: str
    requests: int  # answered or failed
    readings: tuple[Reading, ...]
    p95_ms: float
    error_rate_pct: float

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def verdicts(self) -> list[Verdict]:
        """The readings as published (golive.shared.events.Verdict): a number never measured is observed -1, not passed."""
        return [Verdict(metric=r.metric, limit=r.limit, observed=-1.0 if r.observed is None else r.observed,
                        passed=r.unread is None and r.observed is not None and r.observed <= r.limit,
                        samples=self.requests)
                for r in self.readings]


def judge(numbers: LatencySummary, limits: Thresholds, min_samples: int | None = None) -> Judgement:
    """The verdict on ``numbers`` (a window or a probe's totals) against ``limits``; ``min_samples`` overrides
    ``limits.min_samples`` (a stage's windows are held to the plan's analysis.min_samples)."""
    requests = numbers.count + numbers.errors
    least = limits.min_samples if min_samples is None else min_samples
    overloaded = numbers.prober_lag_ms > PROBER_LAG_TOLERANCE_MS
    enough = requests >= least and not overloaded
    answered = numbers.count > 0
    rate = error_rate_pct(numbers.count, numbers.errors)
    observed = {"p95_ms": numbers.p95_ms, "p99_ms": numbers.p99_ms, "error_rate_pct": rate}
    unread_requests = numbers.unread.get(REQUESTS_UNREAD)
    readings: list[Reading] = []
    for metric in REQUEST_LIMITS:
        limit = getattr(limits, metric)
        if limit is not None:
            judged = enough and (answered or metric == "error_rate_pct")
            readings.append(Reading(metric, limit, observed[metric], judged, unread_requests,
                                    _bound(numbers, metric, limit), numbers.confidence))
    for metric in GAUGES:
        limit = getattr(limits, metric)
        if limit is not None:
            value = numbers.gauges.get(metric)
            readings.append(Reading(metric, limit, value, value is not None, numbers.unread.get(metric)))
    asks_requests = any(r.metric in REQUEST_LIMITS for r in readings) or not readings
    over = f" over {requests:,} requests" if asks_requests else ""
    breaches = [r for r in readings if r.over]
    if breaches:
        return Judgement("fail", ", ".join(r.words() for r in breaches) + over, requests, tuple(readings),
                         numbers.p95_ms, round(rate, 3))
    if asks_requests and overloaded:
        unjudged = [overload_words(numbers.prober_lag_ms, numbers.overloaded)]
        over = ""
    elif asks_requests and unread_requests:  # said once, not once per request limit
        unjudged = [f"requests unread ({unread_requests})"]
        over = over if enough else ""
    elif asks_requests and not enough:
        unjudged = [f"{requests:,} requests < min_samples {least}"]
        over = ""  # the requests are counted already
    elif asks_requests and not answered and requests:
        unjudged = ["no successful request to measure latency on"]
    else:
        unjudged = []
    within = [r.words() for r in readings if r.conclusive]
    unjudged += [r.words() for r in readings if (r.observed is None or r.unread is not None or r.noisy)
                 and not (unread_requests and r.metric in REQUEST_LIMITS)]
    verdict: Finding = "inconclusive" if unjudged else "pass"
    why = ", ".join(within + unjudged) or "no thresholds"
    return Judgement(verdict, why + over, requests, tuple(readings), numbers.p95_ms, round(rate, 3))


def _bound(numbers: LatencySummary, metric: str, limit: float) -> tuple[float | None, float | None] | None:
    """The confidence bounds ``metric`` is judged by, in its unit; None: judged as it is (numbers without bounds, or
    an error-rate limit of 0: a count, which no noise blurs)."""
    if not 0.0 < numbers.confidence < 1.0:
        return None
    if metric == "error_rate_pct":
        if limit <= 0:
            return None
        low, high = rate_bounds(numbers.count + numbers.errors, numbers.errors, 1.0 - numbers.confidence)
        return 100.0 * low, 100.0 * high
    bound = numbers.bounds_ms.get(metric)
    return (bound.low, bound.high) if bound is not None else (None, None)


def overload_words(lag_ms: float, not_counted: int) -> str:
    """Why numbers the prober could not time are not judged: ``prober overloaded: lag 1,480 ms (tolerance 500 ms),
    12 requests not counted``."""
    counted = f", {not_counted:,} requests not counted" if not_counted else ""
    return f"prober overloaded: lag {number(lag_ms)} ms (tolerance {number(PROBER_LAG_TOLERANCE_MS)} ms){counted}"


def reading_words(metric: str, observed: float | None, limit: float) -> str:
    """One number against its limit as every message says it: ``p95 512 ms > 400 ms``, ``replica lag 9.25 s <= 10 s``,
    ``WAL lag never measured``. A published Verdict reads the same (a gauge observed -1: never measured)."""
    label, unit = _WORDS.get(metric, (metric, " ms" if metric.endswith("_ms") else ""))
    if observed is None or (metric in GAUGES and observed < 0):  # a gauge is never below 0; a p95 increase may be
        return f"{label} never measured"
    op = ">" if observed > limit else "<="
    return f"{label} {number(observed)}{unit} {op} {number(limit)}{unit}"


def number(value: float) -> str:
    """512 -> "512", 3.14159 -> "3.14", 104857600 -> "104,857,600": numbers as a person reads them."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")
