"""The vercel provider: Vercel's REST API through httpx, with rolling releases as the traffic mechanism.

What the runbook does by hand, as API calls (the runbook's ``vercel traffic ALIAS ID@N`` is not a real
Vercel command; rolling releases are):

- resolve: ``vercel ls --prod`` = GET /v6/deployments?projectId=P&target=production (latest first) for the
  latest and previous production deployments; GET /v9/projects/P ``targets.production.id`` for the one serving.
- shift to N%: POST /v1/projects/P/rolling-release/start {canaryDeploymentId} (first stage), then
  POST .../approve-stage {nextStageIndex, canaryDeploymentId} to the stage whose targetPercentage is N,
  or POST .../complete {canaryDeploymentId} for the final 100% stage. N must be one of the project's
  configured stages (PATCH .../rolling-release/config sets them); anything else is a conflict.
- read back: GET /v1/projects/P/rolling-release: the active stage's targetPercentage.
- rollback (abort): POST /v9/projects/P/rollback/{deploymentId} (instant rollback; Vercel has no abort endpoint).
- promote: complete the rolling release, or POST /v10/projects/P/promote/{deploymentId}.

Settings (provider spec): ``project`` (id or name, required), ``team_id``, ``token_env`` (default
VERCEL_TOKEN; the token is read from that variable when a call is made and never logged or put in an error),
``api_url`` (default https://api.vercel.com), ``max_attempts`` (default 4), ``max_retry_after_s`` (default 30),
``timeout_s`` (default 10). 429, 5xx and network errors are retried with backoff (0.2 s doubling to 5 s), or after
the Retry-After Vercel sends when it is at most max_retry_after_s; 401/403, 404 and 409 are not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from golive.services.traffic.provider import (
    AuthError,
    ConflictError,
    Deployments,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
    check_settings,
)
from golive.shared.backoff import Backoff
from golive.shared.commands import ProviderSpec
from golive.shared.secrets import redact

DEFAULT_API = "https://api.vercel.com"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (Vercel sends delta-seconds); None when absent, an HTTP date or garbage (then the
    backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class VercelProvider:
    name = "vercel"

    def __init__(self, project: str, *, token_env: str = "VERCEL_TOKEN", team_id: str | None = None,
                 api_url: str = DEFAULT_API, max_attempts: int = 4, max_retry_after_s: float = 30.0,
                 timeout_s: float = 10.0) -> None:
        self.project = project
        self.token_env = token_env
        self.team_id = team_id
        self.max_attempts = max(1, max_attempts)
        self.max_retry_after_s = max_retry_after_s
        self.client = httpx.AsyncClient(base_url=api_url.rstrip("/"), timeout=timeout_s)
        self._p = quote(project, safe="")

    @classmethod
    def from_spec(cls, spec: ProviderSpec, state_dir: Path) -> VercelProvider:
        extra = spec.model_extra or {}
        check_settings("vercel", extra, {"project", "team_id", "token_env", "api_url", "max_attempts",
                                         "max_retry_after_s", "timeout_s"})
        if not extra.get("project"):
            raise ProviderError("vercel provider: project (id or name) is required")
        return cls(str(extra["project"]), token_env=str(extra.get("token_env") or "VERCEL_TOKEN"),
                   team_id=extra.get("team_id"), api_url=str(extra.get("api_url") or DEFAULT_API),
                   max_attempts=int(extra.get("max_attempts") or 4),
                   max_retry_after_s=float(extra.get("max_retry_after_s") or 30.0),
                   timeout_s=float(extra.get("timeout_s") or 10.0))

    # --- the protocol ---------------------------------------------------------------------------

    def target(self, canary: str, stable: str | None) -> str:
        # a project has one rolling release at a time, whichever deployments it moves between
        team = f" team {self.team_id}" if self.team_id else ""
        return f"vercel {self.client.base_url.host} project {self.project}{team}"

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        listed = await self._call("GET", "/v6/deployments", params={
            "projectId": self.project, "target": "production", "limit": 5})
        ids = [d.get("uid") or d.get("id") for d in listed.get("deployments", [])]  # latest first
        production = await self._production() or (ids[0] if ids else None)
        candidate = canary or (ids[0] if ids and ids[0] != production else None)
        if candidate is None or candidate == production:
            # nothing new, or the candidate serves already: going back means the production deployment before it
            older = ids[ids.index(production) + 1:] if production in ids else ids
            previous = older[0] if older else None
        else:
            previous = production  # the candidate is not live yet: back means the one serving now
        return Deployments(production=production, previous=stable or previous, candidate=candidate)

    async def weight(self, canary: str) -> int:
        release = await self._rolling_release()
        if release and release.get("state") == "ACTIVE" and _id(release.get("canaryDeployment")) == canary:
            return int((release.get("activeStage") or {}).get("targetPercentage", 0))
        return 100 if await self._production() == canary else 0

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        if weight == 0:
            await self.rollback(canary, stable)
            return
        release = await self._rolling_release()
        if not (release and release.get("state") == "ACTIVE"):
            release = (await self._call("POST", f"/v1/projects/{self._p}/rolling-release/start",
                                        json={"canaryDeploymentId": canary})).get("rollingRelease") or {}
        elif _id(release.get("canaryDeployment")) != canary:
            raise ConflictError(f"vercel: a rolling release of {_id(release.get('canaryDeployment'))} is active in "
                                f"project {self.project}; it must finish or be rolled back before {canary} can start")
        stages = release.get("stages") or []
        target = next((s for s in stages if int(s.get("targetPercentage", -1)) == weight), None)
        if target is None:
            offered = [s.get("targetPercentage") for s in stages]
            raise ConflictError(f"vercel: {weight}% is not a stage of the project's rolling release {offered}; "
                                "configure the stages (PATCH /v1/projects/{project}/rolling-release/config) to match the plan")
        active = int((release.get("activeStage") or {}).get("index", 0))
        if int(target["index"]) == active:
            return
        if int(target["index"]) < active:
            raise ConflictError(f"vercel: a rolling release cannot go back from stage {active} to {weight}%; roll back instead")
        if target.get("isFinalStage"):
            await self._call("POST", f"/v1/projects/{self._p}/rolling-release/complete", json={"canaryDeploymentId": canary})
        else:
            await self._call("POST", f"/v1/projects/{self._p}/rolling-release/approve-stage",
                             json={"nextStageIndex": int(target["index"]), "canaryDeploymentId": canary})

    async def verify(self, canary: str, weight: int) -> int:
        return await self.weight(canary)

    async def promote(self, canary: str, stable: str | None) -> None:
        release = await self._rolling_release()
        if release and release.get("state") == "ACTIVE" and _id(release.get("canaryDeployment")) == canary:
            await self._call("POST", f"/v1/projects/{self._p}/rolling-release/complete", json={"canaryDeploymentId": canary})
        else:
            await self._call("POST", f"/v10/projects/{self._p}/promote/{quote(canary, safe='')}")

    async def rollback(self, canary: str, to: str | None) -> None:
        if to is None:
            to = (await self.resolve(canary, None)).previous
            if to is None or to == canary:
                raise ConflictError(f"vercel: no previous production deployment of {self.project} to roll back to")
        await self._call("POST", f"/v9/projects/{self._p}/rollback/{quote(to, safe='')}")

    # --- Vercel's API -----------------------------------------------------------------------------

    async def _rolling_release(self) -> dict[str, Any] | None:
        return (await self._call("GET", f"/v1/projects/{self._p}/rolling-release")).get("rollingRelease")

    async def _production(self) -> str | None:
        project = await self._call("GET", f"/v9/projects/{self._p}")
        return _id((project.get("targets") or {}).get("production"))

    def _token(self) -> str:
        token = os.environ.get(self.token_env)
        if not token:
            raise AuthError(f"vercel: environment variable {self.token_env} (the API token) is not set for the traffic service")
        return token

    async def _call(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> dict[str, Any]:
        """One API call with bounded retries: 429, 5xx and network errors back off, or wait what Retry-After asks
        when it asks no more than ``max_retry_after_s``; a longer wait is the caller's to make (the error says it)."""
        token = self._token()
        params = dict(params or {})
        if self.team_id:
            params["teamId"] = self.team_id
        backoff = Backoff(base_s=0.2, cap_s=5.0, attempts=self.max_attempts)
        async for attempt in backoff.retrying(self._worth_waiting, asked=_asked_wait):
            with attempt:
                return await self._try(method, path, params, json, token, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable")  # the last try returns or raises

    def _worth_waiting(self, exc: BaseException) -> bool:
        return (isinstance(exc, (RateLimitedError, UnavailableError))
                and (exc.retry_after_s or 0.0) <= self.max_retry_after_s)

    async def _try(self, method: str, path: str, params: dict, json: Any, token: str, attempt: int) -> dict[str, Any]:
        """One request; its failure says how many attempts were made so far (the last one's is the one raised)."""
        what = f"vercel {method} {path}"
        try:
            answer = await self.client.request(method, path, params=params, json=json,
                                               headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            raise UnavailableError(f"{what}: {type(exc).__name__} after {attempt} attempts") from None
        status = answer.status_code
        if status < 300:
            return answer.json() if answer.content else {}
        reason = f"{what}: HTTP {status} {_message(answer, token)}".strip()
        asked = retry_after_seconds(answer.headers.get("Retry-After"))
        asked_text = f"; Retry-After {asked:g} s" if asked is not None else ""
        if status == 429:
            raise RateLimitedError(f"{reason} (after {attempt} attempts{asked_text})", asked)
        if status >= 500:
            raise UnavailableError(f"{reason} (after {attempt} attempts{asked_text})", retry_after_s=asked)
        if status in (401, 403):
            raise AuthError(f"{reason}: check the token in {self.token_env} and its team scope")
        if status == 404:
            raise NotFoundError(reason)
        if status == 409:
            raise ConflictError(reason)
        raise ProviderError(reason)


def _asked_wait(exc: BaseException) -> float | None:
    """What Vercel asked to wait (Retry-After), if it did."""
    return getattr(exc, "retry_after_s", None)


def _id(deployment: Any) -> str | None:
    if isinstance(deployment, dict):
        return deployment.get("id") or deployment.get("uid")
    return deployment if isinstance(deployment, str) else None


def _message(answer: httpx.Response, token: str) -> str:
    """Vercel's error message ({"error": {"code", "message"}}), without anything that could be the token."""
    try:
        error = answer.json().get("error") or {}
        text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except ValueError:
        text = answer.text[:200]
    return redact(text, token)
