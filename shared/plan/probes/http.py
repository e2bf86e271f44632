"""The http probe: an endpoint checked like ``curl -f`` (a status >= 400 is an error; no redirects followed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from golive.shared.plan.base import Problem
from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeSpecBase
from golive.shared.plan.targets import DEPLOYMENT, HttpUrl, ProbeUrl
from golive.shared.secrets import EnvName

# what the demo app sends; a platform's own (a proxy adding the upstream's name) is set per probe
DEPLOYMENT_HEADER = "x-golive-deployment"

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpProbe(PlanProbe):
    """An HTTP endpoint. ``url``: http(s)://..., ``${ENV_VAR}/path`` (the base from the environment where the
    prober runs) or a path on targets.deployment_url; ``{deployment}`` in it aims each check at a deployment.
    Header values that are secrets come from environment variables (``headers_env``)."""

    KIND = "http"
    kind: Literal["http"] = "http"
    url: ProbeUrl
    method: HttpMethod = "GET"
    headers: dict[str, str] = {}
    headers_env: dict[str, EnvName] = Field(default={}, description="header name -> environment variable holding its value")
    body: str | None = None
    expect_status: int | None = Field(default=None, ge=100, le=599, description="default: any status below 400")
    body_contains: str | None = None
    deployment_header: str = Field(
        default=DEPLOYMENT_HEADER, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$",
        description="the response header naming the deployment that answered (its id): a check on the production "
                    "alias compares the canary's answers with stable's by it")

    @model_validator(mode="before")
    @classmethod
    def _has_a_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("url"):
            raise Problem(("url",), "an http probe needs a url")
        return data

    @model_validator(mode="after")
    def _deployment_only_in_the_url(self) -> HttpProbe:
        if DEPLOYMENT in (self.body or ""):
            raise Problem(("body",), f"{DEPLOYMENT} is filled in http probe urls only; put it in the probe's url")
        return self

    def aims_at_deployment(self) -> bool:
        return DEPLOYMENT in self.url or self.url.startswith("/")

    def spec(self, name: str, context: ProbeContext) -> HttpProbeSpec:
        return self._as(HttpProbeSpec, name=name, url=context.targets.url_of(self.url, context.deployment))


class HttpProbeSpec(HttpProbe, ProbeSpecBase):
    """An http probe as RunProbe carries it: named, its url filled for one deployment."""

    url: HttpUrl
    # a RunProbe without timeout_ms (the first commands' senders) has always meant 5 s; a plan's probe states its own
    timeout_ms: int = Field(default=5_000, gt=0, description="how long one request may take")
