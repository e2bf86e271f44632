"""The traffic provider protocol and the registry of providers by type name (Flagger's / Argo's shape).

A provider moves traffic between two deployments: the production one (stable) and the candidate
(canary). Every change is read back (``verify``), never trusted. Errors are typed so the service can
tell a retry that may work (rate limited, unavailable) from one that cannot (auth, not found, conflict).

Adding a provider (the Kubernetes Gateway API, ...) is one new module with a class
that satisfies ``TrafficProvider`` and one line in ``PROVIDERS``; out of tree, a package that declares the class
under the entry-point group ``golive.traffic_providers`` (shared/plugins.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from golive.shared.commands import ProviderSpec
from golive.shared.plugins import TRAFFIC_PROVIDERS, with_plugins


class ProviderError(Exception):
    """A provider call failed. ``transient``: a retry may succeed (rate limit, unavailable). ``retry_after_s``: how
    long the provider asked to wait before the next call, when it said (HTTP Retry-After).

    The message says what failed and never holds a token or a secret URL."""

    transient = False

    def __init__(self, reason: str, transient: bool | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        if transient is not None:
            self.transient = transient
        self.retry_after_s = retry_after_s


class AuthError(ProviderError):
    """The provider refused the credentials (HTTP 401/403): fix the token; retrying cannot help."""


class NotFoundError(ProviderError):
    """The project or deployment does not exist (HTTP 404)."""


class ConflictError(ProviderError):
    """The provider's state does not allow the change (HTTP 409, or a weight it cannot express)."""


class RateLimitedError(ProviderError):
    """Still rate limited after the retries (HTTP 429). ``retry_after_s``: what the provider asked for."""

    transient = True

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason, retry_after_s=retry_after_s)


class UnavailableError(ProviderError):
    """The provider did not answer or failed (connection refused, timeout, HTTP 5xx) after the retries."""

    transient = True


@dataclass(frozen=True)
class Deployments:
    """Who is who: ``production`` serves now, ``previous`` is where a rollback goes, ``candidate`` is new."""

    production: str | None
    previous: str | None
    candidate: str | None


class TrafficProvider(Protocol):
    name: str

    def target(self, canary: str, stable: str | None) -> str:
        """What this provider routes for the pair, as a name (no secret): two runs on one target undo each
        other's traffic, so a target is held by one run at a time (services/traffic/target_lock.py)."""

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        """The current production, previous and candidate deployments, as the provider knows them."""

    async def weight(self, canary: str) -> int:
        """The canary weight (percent) the provider really applies now: read back, never remembered."""

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        """Send ``weight`` percent of traffic to ``canary`` and the rest to ``stable``."""

    async def verify(self, canary: str, weight: int) -> int:
        """Read the weight back; returns what the provider applies (the caller compares with ``weight``)."""

    async def promote(self, canary: str, stable: str | None) -> None:
        """Make ``canary`` the production deployment: all traffic on it for good."""

    async def rollback(self, canary: str, to: str | None) -> None:
        """Send all traffic to ``to`` (the previous deployment); the canary's weight becomes 0."""


# type name -> "module:class"; imported on use so one provider's dependencies never burden another's users
PROVIDERS: dict[str, str] = {
    "dry-run": "golive.services.traffic.dry_run:DryRunProvider",
    "envoy": "golive.services.traffic.envoy:EnvoyProvider",
    "haproxy": "golive.services.traffic.haproxy:HAProxyProvider",
    "vercel": "golive.services.traffic.vercel:VercelProvider",
}


def known_providers() -> dict[str, str]:
    """Type name -> "module:class": the built-in providers and those installed packages add (a built-in name wins)."""
    return with_plugins(TRAFFIC_PROVIDERS, PROVIDERS)


def build_provider(spec: ProviderSpec, state_dir: Path) -> TrafficProvider:
    """The provider named by ``spec.type``, configured from the rest of the spec."""
    known = PROVIDERS if spec.type in PROVIDERS else known_providers()  # entry points are read only for another name
    target = known.get(spec.type)
    if target is None:
        raise ProviderError(f"unknown traffic provider {spec.type!r}; known: {', '.join(sorted(known))}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_spec(spec, state_dir)


def canary_percent(stable_w: int, canary_w: int) -> int:
    """The canary's share in percent of a proxy's two weights (a human may have set weights that do not add up to
    100; both at 0 reads 0)."""
    total = stable_w + canary_w
    return round(100 * canary_w / total) if total > 0 else 0


def check_settings(kind: str, extra: dict, allowed: set[str]) -> None:
    """Refuse settings a provider does not know (a typo would otherwise be silently ignored)."""
    unknown = set(extra) - allowed
    if unknown:
        raise ProviderError(f"{kind} provider: unknown settings {sorted(unknown)}; known: {sorted(allowed)}")

