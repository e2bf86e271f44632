"""The envoy provider: weights of a stable and a canary cluster changed at runtime through Envoy's admin API.

The proxy runs the configuration of golive.services.traffic.envoy_config (weighted_clusters whose weights are the
runtime keys ``<prefix>.stable`` / ``<prefix>.canary``, a layered runtime with an admin layer). Setting a
weight is ``POST /runtime_modify``: no restart, no dropped connection. Reading it back is ``GET /runtime``.

Runtime overrides live in Envoy's memory only. The provider keeps the weights it set in a small state file
(``state_file``, default ``<state dir>/traffic-envoy-<admin port>.json``); when the admin layer has no value
(Envoy restarted and fell back to its start weights) it re-asserts them before answering. A value in the
admin layer that differs from the one golive set is a human's change: it is reported, never overwritten
here (the service decides: drift).

Settings (provider spec): ``admin_url`` (e.g. http://127.0.0.1:9901) or ``admin_url_env`` (the environment
variable holding it; `golive up` sets GOLIVE_ENVOY_ADMIN_URL) is required; ``runtime_prefix``
(default routing.canary), ``state_file``, ``timeout_s`` (default 2).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from golive.services.traffic.envoy_config import DEFAULT_RUNTIME_PREFIX, runtime_keys
from golive.services.traffic.provider import Deployments, ProviderError, UnavailableError, canary_percent, check_settings
from golive.shared.commands import ProviderSpec
from golive.shared.replace_file import replace_whole


class EnvoyProvider:
    name = "envoy"

    def __init__(self, admin_url: str, state_file: Path, runtime_prefix: str = DEFAULT_RUNTIME_PREFIX,
                 timeout_s: float = 2.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.state_file = state_file
        self.runtime_prefix = runtime_prefix
        self.stable_key, self.canary_key = runtime_keys(runtime_prefix)
        self.client = httpx.AsyncClient(base_url=self.admin_url, timeout=timeout_s, trust_env=False)
        self.reasserted = 0  # how many times lost weights were put back (visible to tests and logs)

    @classmethod
    def from_spec(cls, spec: ProviderSpec, state_dir: Path) -> EnvoyProvider:
        extra = spec.model_extra or {}
        check_settings("envoy", extra, {"admin_url", "admin_url_env", "runtime_prefix", "state_file", "timeout_s"})
        admin_url = extra.get("admin_url")
        if not admin_url and extra.get("admin_url_env"):
            admin_url = os.environ.get(str(extra["admin_url_env"]))
            if not admin_url:
                raise ProviderError(f"envoy provider: environment variable {extra['admin_url_env']} (the admin URL) "
                                    "is not set for the traffic service")
        if not admin_url or not str(admin_url).startswith(("http://", "https://")):
            raise ProviderError("envoy provider: admin_url (or admin_url_env) is required, e.g. http://127.0.0.1:9901")
        port = urlsplit(str(admin_url)).port or 80
        state_file = Path(extra.get("state_file") or state_dir / f"traffic-envoy-{port}.json")
        return cls(str(admin_url), state_file, str(extra.get("runtime_prefix") or DEFAULT_RUNTIME_PREFIX),
                   float(extra.get("timeout_s") or 2.0))

    # --- the protocol ---------------------------------------------------------------------------

    def target(self, canary: str, stable: str | None) -> str:
        # one route of one proxy: its two runtime keys split traffic whichever deployments sit behind them
        url = urlsplit(self.admin_url)
        return f"envoy {url.scheme}://{url.hostname}:{url.port or 80} {self.runtime_prefix}"

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        last = await asyncio.to_thread(self._read_state)
        production = last.get("canary_deployment") if last.get("promoted") else last.get("stable_deployment", stable)
        return Deployments(production=production or stable, previous=last.get("stable_deployment", stable),
                           candidate=canary or last.get("canary_deployment"))

    async def weight(self, canary: str) -> int:
        stable_w, canary_w, from_admin = await self._read_runtime()
        if not from_admin:
            last = await asyncio.to_thread(self._read_state)
            if "canary_weight" in last:  # Envoy restarted and lost our override: put it back, then read again
                await self._modify(100 - last["canary_weight"], last["canary_weight"])
                self.reasserted += 1
                stable_w, canary_w, _ = await self._read_runtime()
        return canary_percent(stable_w, canary_w)

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        await self._modify(100 - weight, weight)
        await asyncio.to_thread(self._write_state, {
            "canary_weight": weight, "canary_deployment": canary, "stable_deployment": stable, "promoted": False,
        })

    async def verify(self, canary: str, weight: int) -> int:
        return await self.weight(canary)

    async def promote(self, canary: str, stable: str | None) -> None:
        await self._modify(0, 100)
        await asyncio.to_thread(self._write_state, {
            "canary_weight": 100, "canary_deployment": canary, "stable_deployment": stable, "promoted": True,
        })

    async def rollback(self, canary: str, to: str | None) -> None:
        await self._modify(100, 0)
        await asyncio.to_thread(self._write_state, {
            "canary_weight": 0, "canary_deployment": canary, "stable_deployment": to, "promoted": False,
        })

    # --- Envoy's admin API ------------------------------------------------------------------------

    async def _modify(self, stable_w: int, canary_w: int) -> None:
        answer = await self._call("POST", "/runtime_modify", params={self.stable_key: stable_w, self.canary_key: canary_w})
        if answer.status_code != 200:
            raise ProviderError(f"envoy admin refused runtime_modify: HTTP {answer.status_code} {answer.text[:200]}")

    async def _read_runtime(self) -> tuple[int, int, bool]:
        """(stable weight, canary weight, whether both come from the admin layer)."""
        answer = await self._call("GET", "/runtime")
        if answer.status_code != 200:
            raise UnavailableError(f"envoy admin /runtime: HTTP {answer.status_code}")
        body = answer.json()
        admin = body.get("layers", []).index("admin") if "admin" in body.get("layers", []) else None
        if admin is None:
            raise ProviderError("envoy runs without an admin runtime layer: weights cannot be changed at runtime "
                                "(use the configuration golive.services.traffic.envoy_config generates)")
        entries = body.get("entries", {})
        values = []
        from_admin = True
        for key in (self.stable_key, self.canary_key):
            entry = entries.get(key)
            if entry is None:
                raise ProviderError(f"envoy runtime has no {key}: is runtime_key_prefix the same as in its config?")
            layer_values = entry.get("layer_values", [])
            from_admin &= admin < len(layer_values) and layer_values[admin] != ""
            try:
                values.append(int(entry.get("final_value", "0")))
            except ValueError:
                raise ProviderError(f"envoy runtime {key} = {entry.get('final_value')!r} is not a weight") from None
        return values[0], values[1], from_admin

    async def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return await self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UnavailableError(f"envoy admin {path} unreachable: {type(exc).__name__}") from None

    # --- the weights golive set (survive a proxy restart and a service restart) -------------------

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}

    def _write_state(self, state: dict) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        replace_whole(self.state_file, json.dumps(state, indent=2, sort_keys=True))
