"""The plan's traffic: which provider moves it (the traffic commands carry ``ProviderSpec``), and the lock-in."""

from __future__ import annotations

from pydantic import ConfigDict, Field, ValidationError, model_validator

from golive.shared.plan.base import Strict
from golive.shared.secrets import check_extras

# HAProxy's identifiers (proxy and server names): letters, digits, '-', '_', '.', ':' (its configuration manual).
# The names go into a runtime API command line, where ';' or a newline would start another command.
_HAPROXY_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"


class HAProxySettings(Strict):
    """The haproxy provider's settings: where its runtime API listens (``socket`` or ``address``, one of them; no
    default address: on a shared machine another HAProxy may answer there), the backend that splits traffic and its
    two servers. The API must be at ``level admin`` (``stats socket ... level admin``) to set weights."""

    socket: str | None = Field(default=None, min_length=2, max_length=107, pattern=r"^/",
                               description="absolute path of the stats socket, e.g. /run/haproxy/admin.sock")
    address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$",
                                description="host:port of a TCP stats socket (stats socket ipv4@127.0.0.1:9999 ...)")
    backend: str = Field(pattern=_HAPROXY_NAME, description="the backend whose two servers split traffic")
    stable_server: str = Field(default="stable", pattern=_HAPROXY_NAME)
    canary_server: str = Field(default="canary", pattern=_HAPROXY_NAME)
    timeout_s: float = Field(default=2.0, gt=0, le=60, description="bound on one runtime API call, connect to answer")

    @model_validator(mode="after")
    def _one_place(self) -> HAProxySettings:
        if (self.socket is None) == (self.address is None):
            raise ValueError("give the runtime API's socket (a path) or its address (host:port), one of them")
        if self.stable_server == self.canary_server:
            raise ValueError("stable_server and canary_server must be two servers")
        return self

    @property
    def host_port(self) -> tuple[str, int] | None:
        """``address`` split into (host, port); None for a UNIX socket."""
        if self.address is None:
            return None
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)

    @classmethod
    def of(cls, extras: dict[str, object]) -> HAProxySettings:
        """The settings from a provider spec's extra keys; ValueError naming each problem (never a value)."""
        try:
            return cls.model_validate(extras)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                                 for e in exc.errors(include_input=False, include_url=False))
            raise ValueError(f"haproxy provider: {problems}") from None


# provider type -> its typed settings, checked when the plan is loaded (the others check theirs when first used)
TYPED_SETTINGS = {"haproxy": HAProxySettings}


class ProviderSpec(Strict):
    """Which traffic provider to use and its settings (secrets by env var name)."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    type: str = "dry-run"

    @model_validator(mode="after")
    def _secrets_by_name(self) -> ProviderSpec:
        check_extras(self.model_extra or {})
        settings = TYPED_SETTINGS.get(self.type)
        if settings is not None:
            settings.of(self.model_extra or {})
        return self


class Traffic(Strict):
    provider: ProviderSpec = ProviderSpec()


class LockIn(Strict):
    """After final validation: make the new deployment production (golive.shared.commands.PromoteTraffic)."""

    promote: bool = Field(default=False, description="promote the canary; the run succeeds once it is read back")
