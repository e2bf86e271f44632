"""The prometheus probe: real user traffic as Prometheus has it, read over each window of a check.

Three PromQL queries, each evaluated over the window just ended (``{window}``, a PromQL duration such as
``30s``) for the deployment the check aims at (``{deployment}``):

- ``rate``: requests per second (``sum(rate(http_requests_total{deployment="{deployment}"}[{window}]))``);
- ``error_ratio``: the share of them that failed, 0..1;
- ``latency``: a latency quantile in seconds, ``{quantile}`` being 0.5, 0.9, 0.95 and 0.99 in turn
  (``histogram_quantile({quantile}, sum by (le) (rate(..._bucket{...}[{window}])))``).

Each query returns one number (a single series; an empty result is no traffic). The window's numbers are the
same as any other kind's (requests, errors, p50..p99), so the same thresholds and baseline comparison judge them
(services/prober/prometheus_probe.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from golive.shared.plan.base import Strict
from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeSpecBase
from golive.shared.plan.targets import DEPLOYMENT, HttpUrl

WINDOW, QUANTILE = "{window}", "{quantile}"
QUANTILES = (0.5, 0.9, 0.95, 0.99)


class PromQueries(Strict):
    """The PromQL of one deployment's traffic; ``{deployment}``, ``{window}`` and ``{quantile}`` are filled in."""

    rate: str = Field(min_length=1, description="requests per second over {window}")
    error_ratio: str = Field(min_length=1, description="failed requests / all requests over {window}, 0..1")
    latency: str = Field(min_length=1, description="the {quantile} latency quantile over {window}, in seconds")

    @field_validator("rate", "error_ratio", "latency")
    @classmethod
    def _over_the_window(cls, value: str) -> str:
        if WINDOW not in value:
            raise ValueError(f"a query reads the window just ended: put {WINDOW} in its range, e.g. [{WINDOW}]")
        return value

    @field_validator("latency")
    @classmethod
    def _a_quantile(cls, value: str) -> str:
        if QUANTILE not in value:
            raise ValueError(f"the latency query gives one quantile: put {QUANTILE} in it (histogram_quantile({QUANTILE}, ...))")
        return value

    def filled(self, deployment: str) -> PromQueries:
        return PromQueries.model_construct(**{k: v.replace(DEPLOYMENT, deployment) for k, v in dict(self).items()})

    def as_sent(self, window: str, quantile: float = 0.95) -> dict[str, str]:
        """Each query as Prometheus gets it over a ``window`` (a PromQL duration); latency at ``quantile``."""
        return {name: query.replace(WINDOW, window).replace(QUANTILE, f"{quantile:g}")
                for name, query in dict(self).items()}


class PrometheusProbe(PlanProbe):
    """Real user traffic from a Prometheus server (``url``: http(s)://... or ``${ENV_VAR}``, read where the prober
    runs). ``{deployment}`` in the queries aims each check at a deployment, so canary and stable are compared."""

    KIND = "prometheus"
    kind: Literal["prometheus"] = "prometheus"
    url: HttpUrl = Field(description="the Prometheus server (its HTTP API is under /api/v1)")
    queries: PromQueries
    when_unset: Literal["fail", "skip"] = Field(
        default="fail", description="url is ${ENV_VAR} and the variable is not set where the prober runs: the check "
        "cannot start (fail), or it is skipped and says so (skip: a stack without Prometheus, such as `golive up` where "
        "the binary is missing)")

    def aims_at_deployment(self) -> bool:
        return any(DEPLOYMENT in query for query in dict(self.queries).values())

    def spec(self, name: str, context: ProbeContext) -> PrometheusProbeSpec:
        return self._as(PrometheusProbeSpec, name=name, queries=self.queries.filled(context.deployment))


class PrometheusProbeSpec(PrometheusProbe, ProbeSpecBase):
    """A prometheus probe as RunProbe carries it: named, its queries filled for one deployment."""
