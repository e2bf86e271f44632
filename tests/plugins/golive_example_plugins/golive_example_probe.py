"""A probe kind outside golive's tree, ``example-tcp``: the time a TCP connect to ``host:port`` (the value of an
environment variable) takes. Its plan model, its spec and its prober target, and the ProbeKind that the entry point
golive.probe_kinds names.

golive imports this module while it builds its plan models: from golive it imports only
golive.shared.plan.probes.base here, and the prober's helpers inside the target's methods.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeKind, ProbeSpecBase


class ExampleTcpProbe(PlanProbe):
    """``kind: example-tcp``: a TCP connect to ``host:port``, the value of environment variable ``address_env``."""

    KIND: ClassVar[str] = "example-tcp"
    kind: Literal["example-tcp"] = "example-tcp"
    address_env: str

    def spec(self, name: str, context: ProbeContext) -> ExampleTcpProbeSpec:
        return self._as(ExampleTcpProbeSpec, name=name)


class ExampleTcpProbeSpec(ExampleTcpProbe, ProbeSpecBase):
    pass


class ExampleTcpTarget:
    """The prober's side: one connect per request, closed at once; a refused connect is a `connection` failure."""

    shown = ""

    def __init__(self, name: str, host: str, port: int, timeout_s: float) -> None:
        self.name, self.host, self.port, self.timeout_s = name, host, port, timeout_s

    @classmethod
    def from_spec(cls, spec: ExampleTcpProbeSpec, env: dict[str, str]) -> ExampleTcpTarget:
        from golive.services.prober.kinds import secret  # the prober's side only: plans load this module too

        host, _, port = secret(env, spec.address_env, f"probe {spec.name}").rpartition(":")
        return cls(spec.name, host, int(port), spec.timeout_ms / 1000)

    async def open(self, concurrency: int) -> None:
        pass

    async def request(self, worker: int) -> None:
        from golive.services.prober.kinds import CONNECTION, TIMEOUT, ProbeFailure

        try:
            async with asyncio.timeout(self.timeout_s):  # not wait_for: on 3.11 it can swallow a cancel
                _reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError as exc:
            raise ProbeFailure(TIMEOUT, f"no connection in {self.timeout_s} s") from exc
        except OSError as exc:
            raise ProbeFailure(CONNECTION, type(exc).__name__) from exc
        writer.close()
        await writer.wait_closed()

    async def close(self) -> None:
        pass


EXAMPLE_TCP = ProbeKind(ExampleTcpProbe, ExampleTcpProbeSpec, target="golive_example_probe:ExampleTcpTarget.from_spec")
