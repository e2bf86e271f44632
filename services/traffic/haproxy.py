"""The haproxy provider: the weights of a stable and a canary server of one HAProxy backend, changed at runtime
through HAProxy's runtime API (the stats socket, services/traffic/haproxy_runtime.py).

Setting a weight is one command line, ``set server <backend>/<canary> weight N; set server <backend>/<stable>
weight 100-N``: no reload, no dropped connection. The server with the larger new weight is set first, so the
backend never has both servers at 0 between the two commands (every request would get a 503). Reading back is ``show servers
state <backend>``: both servers from one snapshot, each with the weight requests see (0 in maintenance or drain).

A weight golive did not set (a human at the socket, a server put in maintenance) is read back as it stands and
never overwritten here: the service refuses the next shift (drift). HAProxy forgets runtime weights when it
restarts (the configured weights come back) unless it keeps them (``server-state-file``); golive then reads the
configured weights back, which the next shift reports as drift rather than fighting them.

Settings (provider spec, shared/plan/traffic.py HAProxySettings): ``socket`` (a path) or ``address``
(host:port), one required and no default; ``backend`` required; ``stable_server`` (default stable),
``canary_server`` (default canary), ``timeout_s`` (default 2, the bound on one runtime API call).
The backend must balance with a dynamic algorithm (roundrobin, leastconn, random): static-rr refuses weights.
"""

from __future__ import annotations

from pathlib import Path

from golive.services.traffic.haproxy_runtime import RuntimeAPI, refusal, servers_state, set_weights_line
from golive.services.traffic.provider import Deployments, NotFoundError, ProviderError, canary_percent
from golive.shared.commands import ProviderSpec
from golive.shared.plan.traffic import HAProxySettings


class HAProxyProvider:
    name = "haproxy"

    def __init__(self, settings: HAProxySettings) -> None:
        self.settings = settings
        self.api = RuntimeAPI(settings.socket, settings.host_port, settings.timeout_s)

    @classmethod
    def from_spec(cls, spec: ProviderSpec, state_dir: Path) -> HAProxyProvider:
        try:
            return cls(HAProxySettings.of(spec.model_extra or {}))
        except ValueError as exc:
            raise ProviderError(str(exc)) from None

    # --- the protocol ---------------------------------------------------------------------------

    def target(self, canary: str, stable: str | None) -> str:
        # one backend of one HAProxy: its two servers split traffic whichever deployments sit behind them
        return f"haproxy {self.api.where} backend {self.settings.backend}"

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        # HAProxy knows servers, not deployments: who is who is what the run says
        return Deployments(production=stable, previous=stable, candidate=canary)

    async def weight(self, canary: str) -> int:
        stable_w, canary_w = await self.weights()
        return canary_percent(stable_w, canary_w)

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        await self._set(100 - weight, weight)

    async def verify(self, canary: str, weight: int) -> int:
        return await self.weight(canary)

    async def promote(self, canary: str, stable: str | None) -> None:
        await self._set(0, 100)

    async def rollback(self, canary: str, to: str | None) -> None:
        await self._set(100, 0)

    # --- the runtime API ------------------------------------------------------------------------

    async def weights(self) -> tuple[int, int]:
        """(stable, canary): the weights requests see now, from one ``show servers state`` snapshot."""
        backend = self.settings.backend
        servers = servers_state(await self.api.run(f"show servers state {backend}"), backend)
        found = []
        for name in (self.settings.stable_server, self.settings.canary_server):
            if name not in servers:
                raise NotFoundError(f"haproxy backend {backend} has no server {name!r} (servers: {sorted(servers)})")
            found.append(servers[name].applied_weight)
        return found[0], found[1]

    async def _set(self, stable_w: int, canary_w: int) -> None:
        backend, stable, canary = self.settings.backend, self.settings.stable_server, self.settings.canary_server
        line = set_weights_line(backend, {stable: stable_w, canary: canary_w})
        error = refusal(await self.api.run(line), f"weights {stable}={stable_w} {canary}={canary_w}")
        if error is not None:
            raise error
