"""The traffic provider protocol and the registry of providers by type name (Flagger's shape).

Adding a provider is one new module with a class that satisfies ``TrafficProvider`` and one line in
``PROVIDERS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shared.commands import ProviderSpec


class ProviderError(Exception):
    """A provider call failed. ``transient``: a retry may succeed (rate limit, unavailable)."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


class TrafficProvider(Protocol):
    name: str

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        """Send ``weight`` percent of traffic to ``canary`` and the rest to ``stable``."""

    async def read_weight(self, canary: str) -> int:
        """The canary weight the provider really applies now (read back, never remembered)."""

    async def rollback(self, canary: str, to: str | None) -> None:
        """Send all traffic to ``to`` (the previous deployment)."""


def build_provider(spec: ProviderSpec, state_dir: Path) -> TrafficProvider:
    """The provider named by ``spec.type``, configured from the rest of the spec."""
    from services.traffic.dry_run import DryRunProvider

    providers = {"dry-run": DryRunProvider}
    factory = providers.get(spec.type)
    if factory is None:
        raise ProviderError(f"unknown traffic provider {spec.type!r}; known: {', '.join(sorted(providers))}")
    return factory.from_spec(spec, state_dir)
