"""The http probe: one endpoint, ``curl -f`` semantics (a status >= 400 fails; redirects are not followed).

Each answer names the deployment that gave it where the response says (``deployment_header``): a check on the
production alias compares the canary's answers with stable's by it. Errors are classed: dns (the name does not
resolve), connection (refused, reset), timeout, http_4xx, http_5xx, unexpected_status (not the expected one),
body_mismatch. Header values can come from environment variables (tokens), and never appear in errors.
"""

from __future__ import annotations

import asyncio
import re
import socket

import httpx

from golive.services.prober.kinds import (
    BODY_MISMATCH,
    CONNECTION,
    DNS,
    HTTP_4XX,
    HTTP_5XX,
    TIMEOUT,
    UNEXPECTED_STATUS,
    Gauges,
    ProbeFailure,
    secret,
)
from golive.shared.plan.probes import HttpProbeSpec
from golive.shared.secrets import shown_url

_URL_FROM_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class HttpTarget:
    """An http probe target: one httpx.AsyncClient whose pool has a connection per worker."""

    def __init__(self, spec: HttpProbeSpec, headers: dict[str, str]) -> None:
        self.spec = spec
        self.name = spec.name
        self.shown = f"{spec.method} {shown_url(spec.url)}"
        self._headers = headers
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_spec(cls, spec: HttpProbeSpec, env: dict[str, str]) -> HttpTarget:
        headers = dict(spec.headers)
        for header, variable in spec.headers_env.items():
            headers[header] = secret(env, variable, f"probe {spec.name} header {header}")
        if match := _URL_FROM_ENV.match(spec.url):  # `${GOLIVE_APP_URL}/api/health`
            base = secret(env, match.group(1), f"probe {spec.name} url").rstrip("/")
            spec = spec.model_copy(update={"url": base + spec.url[match.end():]})
        return cls(spec, headers)

    async def open(self, concurrency: int) -> None:
        self._client = httpx.AsyncClient(
            headers=self._headers,
            timeout=httpx.Timeout(self.spec.timeout_ms / 1000),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would measure the proxy, not the target
        )

    async def request(self, worker: int) -> Gauges:
        assert self._client is not None, "open() first"
        try:
            # httpx times each read, not the whole answer: a target that trickles its body would hold a worker
            # (and the hold) forever; the probe's timeout bounds the whole request
            async with asyncio.timeout(self.spec.timeout_ms / 1000):
                response = await self._client.request(self.spec.method, self.spec.url, content=self.spec.body)
        except (httpx.TimeoutException, TimeoutError):
            raise ProbeFailure(TIMEOUT) from None
        except httpx.TransportError as exc:
            raise ProbeFailure(DNS if _is_dns_failure(exc) else CONNECTION, type(exc).__name__) from None
        status = response.status_code
        # which deployment answered (behind the production alias, either): a failure is charged to the one that gave it
        deployment = response.headers.get(self.spec.deployment_header)
        if self.spec.expect_status is not None and status != self.spec.expect_status:
            raise ProbeFailure(_status_class(status), f"status {status}, expected {self.spec.expect_status}",
                               deployment=deployment)
        if status >= 400:
            raise ProbeFailure(_status_class(status), f"status {status}", deployment=deployment)
        if self.spec.body_contains is not None and self.spec.body_contains not in response.text:
            raise ProbeFailure(BODY_MISMATCH, "the body does not contain the expected text", deployment=deployment)
        return Gauges(deployment=deployment)  # no gauges: only who answered

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _status_class(status: int) -> str:
    if 400 <= status < 500:
        return HTTP_4XX
    if status >= 500:
        return HTTP_5XX
    return UNEXPECTED_STATUS


def _is_dns_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        unresolved = ("Name or service not known", "nodename nor servname", "Temporary failure in name resolution")
        if any(text in str(seen) for text in unresolved):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
