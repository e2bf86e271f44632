"""The plan's traffic: which provider moves it (the traffic commands carry ``ProviderSpec``), and the lock-in."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from shared.plan.base import Strict
from shared.secrets import check_extras


class ProviderSpec(Strict):
    """Which traffic provider to use and its settings (secrets by env var name)."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    type: str = "dry-run"

    @model_validator(mode="after")
    def _secrets_by_name(self) -> ProviderSpec:
        check_extras(self.model_extra or {})
        return self


class Traffic(Strict):
    provider: ProviderSpec = ProviderSpec()


class LockIn(Strict):
    """After final validation: make the new deployment production (shared.commands.PromoteTraffic)."""

    promote: bool = Field(default=False, description="promote the canary; the run succeeds once it is read back")
