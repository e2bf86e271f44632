"""A traffic provider outside golive's tree: weights kept in a JSON file (``state_file``), read back on verify."""

from __future__ import annotations

import json
from pathlib import Path

from golive.services.traffic.provider import Deployments, check_settings
from golive.shared.commands import ProviderSpec


class ExampleFileProvider:
    name = "example-file"

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file

    @classmethod
    def from_spec(cls, spec: ProviderSpec, state_dir: Path) -> ExampleFileProvider:
        extra = spec.model_extra or {}
        check_settings("example-file", extra, {"state_file"})
        return cls(Path(extra.get("state_file") or state_dir / "example-file.json"))

    def target(self, canary: str, stable: str | None) -> str:
        return f"example-file {self.state_file}"

    async def resolve(self, canary: str | None, stable: str | None) -> Deployments:
        return Deployments(production=stable, previous=stable, candidate=canary)

    async def weight(self, canary: str) -> int:
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        return int(state.get(canary, 0))

    async def set_weight(self, canary: str, stable: str | None, weight: int) -> None:
        self.state_file.write_text(json.dumps({canary: weight, "by": self.name}))

    async def verify(self, canary: str, weight: int) -> int:
        return await self.weight(canary)

    async def promote(self, canary: str, stable: str | None) -> None:
        await self.set_weight(canary, stable, 100)

    async def rollback(self, canary: str, to: str | None) -> None:
        await self.set_weight(canary, to, 0)
