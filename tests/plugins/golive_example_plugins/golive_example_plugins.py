"""Parts outside golive's tree: a traffic provider whose weights are kept in a JSON file (``state_file``, read back
on verify) and a chat sink that posts a message's first line. The probe kind is golive_example_probe.py."""

from __future__ import annotations

import json
from pathlib import Path

from golive.services.notifier.sinks import Outbound
from golive.services.notifier.templates import Notice
from golive.services.traffic.provider import Deployments, check_settings
from golive.shared.commands import ProviderSpec
from golive.shared.plan.notifications import NotificationSink


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


class ExampleChatSink:
    def __init__(self, config: NotificationSink) -> None:
        self.config = config

    def outbound(self, notice: Notice) -> Outbound:
        return Outbound({"message": notice.first_line})

