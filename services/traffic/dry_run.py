"""The dry-run provider: records intended weights in a JSON file and reads them back.

For rehearsing a plan without touching real traffic. The file (``state_file`` in the provider spec,
default ``<state dir>/traffic-dry-run.json``) holds ``{canary: {"weight": N, "stable": ID}}``; it is
replaced whole (shared/replace_file.py), so a reader never sees half a file, and concurrent updates of different
canaries are each kept. Editing the file by hand is how a rehearsal
plays "someone changed traffic behind golive's back" (the next shift reports drift).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from golive.services.traffic.provider import Deployments, check_settings
from golive.shared.commands import ProviderSpec
from golive.shared.replace_file import locked, replace_whole


class DryRunProvider:
    name = "dry-run"

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file

    @classmethod
    def from_spec(cls, spec: ProviderSpec, state_dir: Path) -> DryRunProvider:
        extra = spec.model_extra or {}
        check_settings("dry-run", extra, {"state_file"})
        return cls(Path(extra.get("state_file") or state_dir / "traffic-dry-run.json"))

    def target(self, canary: str, stable: str | None) -> str:
        # the file keeps one entry per canary: that entry is what a run shifts
        return f"dry-run {self.state_file} canary {canary}"

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        state = await asyncio.to_thread(self._read)
        production = next((c for c, e in state.items() if e.get("weight") == 100 and e.get("promoted")), stable)
        return Deployments(production=production, previous=stable, candidate=canary)

    async def weight(self, canary: str) -> int:
        state = await asyncio.to_thread(self._read)
        return int(state.get(canary, {}).get("weight", 0))

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        await asyncio.to_thread(self._update, canary, {"weight": weight, "stable": stable})

    async def verify(self, canary: str, weight: int) -> int:
        return await self.weight(canary)

    async def promote(self, canary: str, stable: str | None) -> None:
        await asyncio.to_thread(self._update, canary, {"weight": 100, "stable": stable, "promoted": True})

    async def rollback(self, canary: str, to: str | None) -> None:
        await asyncio.to_thread(self._update, canary, {"weight": 0, "stable": to})

    def _read(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}

    def _update(self, canary: str, entry: dict) -> None:
        with locked(self.state_file):  # other canaries' entries written meanwhile are kept, not overwritten
            state = self._read()
            state[canary] = entry
            replace_whole(self.state_file, json.dumps(state, indent=2, sort_keys=True))
