"""The runs that have started and not ended, in the JetStream KV bucket ``<ROOT>_ACTIVE_RUNS`` (no TTL).

A lease says who drives a run; it expires when its holder dies, and then its key is gone. This bucket says which
runs exist to be driven at all, so a standby coordinator can take over a run whose holder died without waiting for
a new event of that run (a run in a 30-minute hold sends none). A coordinator adds a run when it takes it and removes
it once the run's run_finished is published.

The post-deploy watches that began and have not ended are here too, under ``watch.<run_id>`` (a run id never holds a
dot, so the two never meet): a watch runs days after its run ended, and a standby takes over one whose driver died
the same way, from this bounded listing rather than from the whole event history. Their value says which check was
last sent and when, so the one taking over does not send it a second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError

from golive.shared.buckets import open_bucket
from golive.shared.bus import Bus

WATCH_PREFIX = "watch."


def active_runs_bucket(root: str) -> str:
    return f"{root.upper()}_ACTIVE_RUNS"


def watch_key(run_id: str) -> str:
    """The key of a run's post-deploy watch, here and in the leases bucket: never a run's own key."""
    return f"{WATCH_PREFIX}{run_id}"


def split_keys(keys: list[str]) -> tuple[list[str], list[str]]:
    """(run ids, run ids of watches) among the bucket's keys, each sorted."""
    runs = sorted(k for k in keys if not k.startswith(WATCH_PREFIX))
    watches = sorted(k[len(WATCH_PREFIX):] for k in keys if k.startswith(WATCH_PREFIX))
    return runs, watches


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

    @classmethod
    def opened_once(cls, bus: Bus) -> Callable[[], Awaitable[ActiveRuns]]:
        """``bus``'s bucket, opened on first use (the bus may not be connected yet) and the same one after."""
        opened: list[ActiveRuns] = []

        async def active() -> ActiveRuns:
            if not opened:
                opened.append(await cls.open(bus.jetstream(), bus.subjects.root, bus.settings.stream_replicas))
            return opened[0]

        return active

    async def add(self, run_id: str) -> None:
        await self.kv.put(run_id, b"")

    async def remove(self, run_id: str) -> None:
        try:
            await self.kv.purge(run_id)
        except KeyNotFoundError:
            pass

    async def list(self) -> list[str]:
        """The runs started and not ended (not the watches)."""
        return split_keys(await self._keys())[0]

    async def watches(self) -> list[str]:
        """The run ids whose post-deploy watch began and has not ended."""
        return split_keys(await self._keys())[1]

    async def put_watch(self, run_id: str, note: bytes = b"") -> None:
        await self.kv.put(watch_key(run_id), note)

    async def watch_note(self, run_id: str) -> bytes:
        """What the watch's driver last noted (b"": nothing, or no such watch)."""
        try:
            entry = await self.kv.get(watch_key(run_id))
        except (KeyNotFoundError, KeyDeletedError):
            return b""
        return entry.value or b""

    async def remove_watch(self, run_id: str) -> None:
        await self.remove(watch_key(run_id))

    async def _keys(self) -> list[str]:
        try:
            return list(await self.kv.keys())
        except NoKeysError:
            return []
