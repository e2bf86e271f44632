"""Where deployments answer: the URL rules of http probes and the plan's ``targets``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from golive.shared.plan.base import Strict
from golive.shared.secrets import refuse_password

DEPLOYMENT = "{deployment}"  # in an http probe's url (or targets.deployment_url): the deployment's id

_HTTP_URL = r"^(https?://|\$\{[A-Za-z_][A-Za-z0-9_]*\})"
# an http(s) URL, or `${NAME}/api/health`: the base comes from environment variable NAME where the prober runs, so
# a plan names its app's address (a per-environment value) the way it names its database; never with a password
HttpUrl = Annotated[str, Field(pattern=_HTTP_URL), AfterValidator(refuse_password)]


def _url_or_path(value: str) -> str:
    if not (value.startswith("/") or re.match(_HTTP_URL, value)):
        raise ValueError("an http probe's url starts with http:// or https://, ${ENV_VAR} (a base from the "
                         "environment) or / (a path on targets.deployment_url)")
    return value


# an http probe's url as a plan writes it: an HttpUrl, or a path resolved on targets.deployment_url; either may
# name {deployment}, filled with the deployment each check aims at
ProbeUrl = Annotated[str, AfterValidator(_url_or_path), AfterValidator(refuse_password)]


class Targets(Strict):
    """Where deployments answer. ``deployment_url``: a template with ``{deployment}`` (Vercel-style per-deployment
    URLs); an http probe whose url is a path (``/api/health``) is resolved against it."""

    # or `${GOLIVE_APP_URL}/deployments/{deployment}`: the base from that environment variable where the prober runs
    deployment_url: HttpUrl | None = Field(default=None, examples=["https://app-{deployment}.vercel.app"])

    @field_validator("deployment_url")
    @classmethod
    def _names_the_deployment(cls, value: str | None) -> str | None:
        if value is not None and DEPLOYMENT not in value:
            raise ValueError(f"a deployment_url template must contain {DEPLOYMENT} (where the deployment id goes)")
        return value

    def url_of(self, url: str, deployment: str) -> str:
        """``url`` (a probe's) for ``deployment``: a path is resolved on deployment_url, ``{deployment}`` filled."""
        if url.startswith("/") and self.deployment_url:
            url = self.deployment_url.rstrip("/") + url
        return url.replace(DEPLOYMENT, deployment)
