"""The prometheus probe: a window of real user traffic read from Prometheus's HTTP API (/api/v1/query).

It sends no requests of its own. At the end of each window it evaluates the plan's queries over that window
(shared/plan/probes/prometheus.py) and turns the answers into the window every kind produces: requests (rate x
seconds), failed ones (error ratio x requests) and latencies spread over the reported quantiles, so the shared
judge and the baseline comparison read it as they read any probe's.

- A server that does not answer, or answers a query with an error, makes the window **unread**
  (golive.shared.judge.REQUESTS_UNREAD, with why): judged inconclusive, never a pass.
- A query the server refuses as invalid (``bad_data``) when the probe starts refuses the probe (ProbeSetupError,
  with the server's message); `golive plan check` asks the same of a reachable server (``plan_problems``).
- No series (no traffic in the window): 0 requests, judged as too few.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass

import httpx

from golive.services.prober.kinds import OTHER, ProbeFailure, ProbeSetupError, secret
from golive.services.prober.stats import LatencyWindow
from golive.shared.judge import REQUESTS_UNREAD
from golive.shared.plan.probes.prometheus import QUANTILES, PrometheusProbeSpec, PromQueries
from golive.shared.secrets import redact, shown_url

_URL_FROM_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ERROR_CLASS = "error_ratio"  # the failed requests a window counts: what the plan's error_ratio query calls failed
# latencies recorded per window at most: the quantile curve's shape, weighted to the window's request count
POINTS = 200
# a query's range in whole milliseconds (PromQL takes ms), and never under 1 s
MIN_RANGE_S = 1.0


class QueryError(Exception):
    """Prometheus could not answer a query; ``invalid``: it refused the query itself (its syntax, its types)."""

    def __init__(self, reason: str, invalid: bool = False) -> None:
        super().__init__(reason)
        self.invalid = invalid


def prom_range(seconds: float) -> str:
    """A window's length as a PromQL duration: ``30000ms``."""
    return f"{int(max(MIN_RANGE_S, seconds) * 1000)}ms"


async def query(client: httpx.AsyncClient, base: str, promql: str, name: str) -> float | None:
    """The single number ``promql`` evaluates to now; None when it returns no series (no traffic); QueryError
    when the server does not answer or refuses it (with the server's own message)."""
    try:
        answer = await client.get(f"{base}/api/v1/query", params={"query": promql})
    except httpx.HTTPError as exc:
        raise _unreachable(base, exc) from None
    return _parsed(answer, base, name)


def _unreachable(base: str, exc: Exception) -> QueryError:
    return QueryError(f"prometheus at {shown_url(base)} unreachable: {type(exc).__name__} {redact(str(exc))}".rstrip())


def _parsed(answer: httpx.Response, base: str, name: str) -> float | None:
    try:
        body = answer.json()
    except ValueError:
        raise QueryError(f"prometheus at {shown_url(base)} answered {answer.status_code} without JSON") from None
    if body.get("status") != "success":
        kind, error = body.get("errorType", "error"), body.get("error", f"status {answer.status_code}")
        raise QueryError(f"query {name}: {kind}: {error}", invalid=kind == "bad_data")
    data = body.get("data", {})
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return _number(result[1])
    if data.get("resultType") != "vector":
        raise QueryError(f"query {name}: a {data.get('resultType')} result, not one number (an instant vector)", invalid=True)
    if not result:
        return None
    if len(result) > 1:
        raise QueryError(f"query {name}: {len(result)} series, not one: aggregate them (sum(...))", invalid=True)
    return _number(result[0]["value"][1])


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Traffic:
    """What Prometheus says of a window: requests per second, the failed share, latency quantiles in seconds."""

    rate: float | None
    error_ratio: float | None
    quantiles: dict[float, float | None]

    def window(self, seconds: float) -> tuple[LatencyWindow, list[float]]:
        """The window's numbers as every kind has them, and the latencies (ms) it stands for (POINTS at most)."""
        window = LatencyWindow()
        requests = round((self.rate or 0.0) * seconds)
        failed = min(requests, round(requests * min(1.0, max(0.0, self.error_ratio or 0.0))))
        answered = requests - failed
        if failed:
            window.errors[ERROR_CLASS] += failed
        known = sorted((q, s * 1000.0) for q, s in self.quantiles.items() if s is not None)
        if not answered or not known:
            return window, []
        points = min(answered, POINTS)
        latencies: list[float] = []
        for i in range(points):  # point i stands for requests [first, last) of the window's answered ones, in order
            first, last = i * answered // points, (i + 1) * answered // points
            ms = _at(known, (first + last) / 2 / answered)
            latencies.append(ms)
            window.record(ms / 1000.0)
            if last - first > 1:
                window.histogram.record_value(max(1, int(ms * 1000)), last - first - 1)
        return window, latencies


def _at(known: list[tuple[float, float]], q: float) -> float:
    """The latency at quantile ``q`` along the reported quantiles (linear between them, flat beyond)."""
    if q <= known[0][0]:
        return known[0][1]
    for (q0, v0), (q1, v1) in zip(known, known[1:]):
        if q <= q1:
            return v0 + (v1 - v0) * (q - q0) / (q1 - q0)
    return known[-1][1]


class PrometheusTarget:
    """A prometheus probe target: reads windows (``read``); it has no requests of its own to send."""

    reads_windows = True

    def __init__(self, spec: PrometheusProbeSpec, base: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.base = base.rstrip("/")
        self.shown = f"prometheus {shown_url(self.base)}"
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_spec(cls, spec: PrometheusProbeSpec, env: dict[str, str]) -> PrometheusTarget | SkippedTarget:
        url = spec.url
        if match := _URL_FROM_ENV.match(url):  # `${PROMETHEUS_URL}`
            if not env.get(match.group(1)) and spec.when_unset == "skip":
                return SkippedTarget(spec.name, f"{match.group(1)} is not set where the prober runs (when_unset: skip)")
            url = secret(env, match.group(1), f"probe {spec.name} url").rstrip("/") + url[match.end():]
        return cls(spec, url)

    async def open(self, concurrency: int) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.spec.timeout_ms / 1000), trust_env=False)
        # a query the server refuses now would be refused in every window: the probe is refused, with its message;
        # a server not answering yet is the windows' to report (inconclusive)
        try:
            await self._read(60.0)
        except QueryError as exc:
            if exc.invalid:
                raise ProbeSetupError(f"probe {self.name}: {exc}") from None

    async def read(self, seconds: float) -> tuple[LatencyWindow, list[float]]:
        """The last ``seconds`` of traffic as a window, and the latencies it stands for; a window Prometheus
        could not give is empty and unread (why)."""
        try:
            traffic = await self._read(seconds)
        except Exception as exc:  # QueryError, or an answer of a shape no version of the API gives
            reason = str(exc) if isinstance(exc, QueryError) else f"prometheus answer unreadable: {type(exc).__name__}"
            window = LatencyWindow()
            window.unread[REQUESTS_UNREAD] = reason
            return window, []
        return traffic.window(seconds)

    async def _read(self, seconds: float) -> Traffic:
        assert self._client is not None, "open() first"
        window = prom_range(seconds)
        plain = self.spec.queries.as_sent(window)
        sent = {"rate": plain["rate"], "error_ratio": plain["error_ratio"]}
        sent.update({f"latency {q:g}": self.spec.queries.as_sent(window, q)["latency"] for q in QUANTILES})
        values = await asyncio.gather(*(query(self._client, self.base, promql, name) for name, promql in sent.items()))
        found = dict(zip(sent, values))
        return Traffic(found["rate"], found["error_ratio"], {q: found[f"latency {q:g}"] for q in QUANTILES})

    async def request(self, worker: int) -> dict[str, float] | None:
        raise ProbeFailure(OTHER, "a prometheus probe reads windows; it sends no requests")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class SkippedTarget:
    """A check the plan lets skip where its server is not configured (``when_unset: skip``): it reads nothing, publishes
    no window, and its result says it was skipped and why (run.py), so no one reads it as evidence of health."""

    reads_windows = True

    def __init__(self, name: str, skipped: str) -> None:
        self.name, self.skipped = name, skipped
        self.shown = "prometheus (not configured)"

    async def open(self, concurrency: int) -> None:
        pass

    async def request(self, worker: int) -> dict[str, float] | None:
        raise ProbeFailure(OTHER, f"skipped: {self.skipped}")

    async def close(self) -> None:
        pass


def plan_problems(probes: dict[str, tuple[str, PromQueries]], env: dict[str, str],
                  timeout_s: float = 5.0) -> dict[tuple[str, str], str]:
    """Each query Prometheus refuses, by (probe, query name): the server's message. ``probes``: probe name -> (its
    server's url, its queries). A server that cannot be reached (or whose ${ENV_VAR} is not set here) is skipped:
    the prober asks again when the probe starts. Synchronous: `golive plan check` runs outside any event loop."""
    refused: dict[tuple[str, str], str] = {}
    with httpx.Client(timeout=httpx.Timeout(timeout_s), trust_env=False) as client:
        for name, (url, queries) in probes.items():
            if match := _URL_FROM_ENV.match(url):
                found = env.get(match.group(1))
                if not found:
                    continue
                url = found.rstrip("/") + url[match.end():]
            base = url.rstrip("/")
            for which, promql in queries.filled("plan-check").as_sent("1m").items():
                try:
                    _parsed(client.get(f"{base}/api/v1/query", params={"query": promql}), base, which)
                except httpx.HTTPError:
                    break  # not reachable from here
                except QueryError as exc:
                    if exc.invalid:
                        refused[(name, which)] = str(exc).removeprefix(f"query {which}: ")
    return refused
