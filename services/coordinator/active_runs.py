"""The runs that have started and not ended, in the JetStream KV bucket ``<ROOT>_ACTIVE_RUNS`` (no TTL).

A lease says who drives a run; it expires when its holder dies, and then its key is gone. This bucket says which
runs exist to be driven at all, so a standby coordinator can take over a run whose holder died without waiting for
a new event of that run (a run in a 30-minute hold sends none). A coordinator adds a run when it takes it and removes
it once the run's run_finished is published.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, NoKeysError

from shared.buckets import open_bucket


def active_runs_bucket(root: str) -> str:
    return f"{root.upper()}_ACTIVE_RUNS"


class ActiveRuns:
    """The thin shell over the bucket: add, remove, list."""

    def __init__(self, kv) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, root: str, replicas: int = 1) -> ActiveRuns:
        kv = await open_bucket(js, KeyValueConfig(
            bucket=active_runs_bucket(root), history=1, storage=StorageType.FILE, replicas=replicas,
            description="golive coordinator: runs started and not ended (a standby takes over those nobody drives)",
        ))
        return cls(kv)

    async def add(self, run_id: str) -> None:
        await self.kv.put(run_id, b"")

    async def remove(self, run_id: str) -> None:
        try:
            await self.kv.purge(run_id)
        except KeyNotFoundError:
            pass

    async def list(self) -> list[str]:
        try:
            return sorted(await self.kv.keys())
        except NoKeysError:
            return []
