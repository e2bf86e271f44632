"""What the traffic service did, shared by all its instances: a JetStream KV bucket ``<ROOT>_TRAFFIC_LEDGER``.

Three kinds of keys (digests: KV keys allow few characters):
- ``last.*``: the weight golive set last per provider and canary (what a shift without an expected weight expects);
- ``before.*``: the weight a shift command found before it changed anything, written once (create): a shift
  redelivered to any instance reports what its first attempt found, not the weight that attempt set;
- ``run.*``: per run and canary, the run's fence. A rollback puts ``fenced``; a shift of that run confirms, by
  compare-and-set on the revision it read, that its run is not fenced. A put always lands; a confirmation over a
  revision older than the fence fails. So no confirmation of a run succeeds once its fence is written.

A fence wins over a late shift (a shift of the run that is in flight on one instance, or redelivered to another,
while the run's rollback runs elsewhere). The order:
- rollback: (F) write the fence, then (H) read the target's hold, then (R) the provider call.
- shift: (G) read the run's key (fenced: refused), take its hold, read the weight (O), (C1) confirm, record the
  before-weight, mark the hold applied (A), (C2) confirm, (S) the provider call, (C3) confirm again.
Why that is enough:
- C1 after O: a shift that read a weight its run's rollback had already set is refused before it records it.
- A before C2: if C2 succeeds, it precedes F in the bucket's order, so H (after F) sees the hold applied and R
  runs; if F came first, C2 fails and the shift never calls its provider.
- C3 after S: S and R run concurrently. If S lands first, R undoes it. If S lands after R, C3 starts after R,
  which started after F was acknowledged, so C3 fails, and the shift undoes its own change (the rollback's call,
  on the run's own hold) and is refused. Either way the canary ends rolled back. The undo counts on S having
  landed when its call returned or failed; a provider that applies a call later than its answer is not covered.
A confirmation is a write (compare-and-set), not a read, because a read may be served by a stale replica of an R3
bucket; a write goes through the stream's leader.

Bounded: history 1 per key and a TTL on the bucket (a key not written for a week goes). A fence matters only
until its run ends (the run guard refuses every command of an ended run), a before-weight only while its command
can be redelivered; a weight set last that expired means golive knows of none (the hold's weight is used).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from golive.shared.buckets import open_bucket

LEDGER_TTL_S = 7 * 24 * 3600.0  # far beyond a run's rollback and any redelivery; keeps the bucket small
CONFIRM_ATTEMPTS = 10  # lost races of one confirmation: only the run's own shifts and its fence write its key


class Fenced(Exception):
    """The run rolled this canary back: a shift or promote of it must not change traffic."""


@dataclass(frozen=True)
class RunGuard:
    """A shift's view of its run's key: ``revision`` 0 when the key does not exist."""

    run_id: str
    canary: str
    revision: int


def ledger_bucket(root: str) -> str:
    return f"{root.upper()}_TRAFFIC_LEDGER"


def ledger_key(kind: str, *parts: str) -> str:
    return f"{kind}." + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


def refused_reason(run_id: str, canary: str) -> str:
    return f"run {run_id} already rolled {canary} back"


class Ledger:
    """The traffic ledger in its KV bucket (see the module docstring for the keys and the fence's order)."""

    def __init__(self, kv) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, root: str, replicas: int = 1, log=None) -> Ledger:
        kv = await open_bucket(js, KeyValueConfig(
            bucket=ledger_bucket(root), history=1, ttl=LEDGER_TTL_S, storage=StorageType.FILE, replicas=replicas,
            description="golive traffic: weights set last, weights each shift found, fences of rolled-back runs",
        ), log)
        return cls(kv)

    async def _read(self, key: str) -> tuple[int, dict | None]:
        try:
            entry = await self.kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):  # never written, or expired
            return 0, None
        return entry.revision, (None if entry.value is None else json.loads(entry.value))

    # --- weights ---------------------------------------------------------------------------------

    async def last_set(self, target: str) -> int | None:
        """The weight golive set last on ``target`` (provider spec and canary), or None."""
        _, value = await self._read(ledger_key("last", target))
        return None if value is None else int(value["weight"])

    async def record_set(self, target: str, weight: int) -> None:
        await self.kv.put(ledger_key("last", target), json.dumps({"weight": weight}).encode())

    async def before(self, command_id: str) -> int | None:
        """The weight shift ``command_id`` found on its first attempt, or None if none recorded it."""
        _, value = await self._read(ledger_key("before", command_id))
        return None if value is None else int(value["weight"])

    async def remember_before(self, command_id: str, weight: int) -> int:
        """Record ``weight`` as what shift ``command_id`` found, unless an attempt did before: the recorded one."""
        key = ledger_key("before", command_id)
        for _ in range(CONFIRM_ATTEMPTS):
            try:
                await self.kv.create(key, json.dumps({"weight": weight}).encode())
                return weight
            except KeyWrongLastSequenceError:  # another attempt recorded first (or a stale read): theirs stands
                if (recorded := await self.before(command_id)) is not None:
                    return recorded
        raise RuntimeError(f"the before-weight of {command_id} could not be read nor recorded")

    # --- fences ----------------------------------------------------------------------------------

    async def fence(self, run_id: str, canary: str) -> int:
        """Fence the run (before its rollback calls the provider): from now on no shift of it confirms.
        Returns the fence's revision."""
        value = {"fenced": True, "at": datetime.now(UTC).isoformat()}
        return await self.kv.put(ledger_key("run", run_id, canary), json.dumps(value).encode())

    async def guard(self, run_id: str, canary: str) -> RunGuard:
        """The run's key as it stands; Fenced if the run rolled ``canary`` back."""
        revision, value = await self._read(ledger_key("run", run_id, canary))
        if value is not None and value.get("fenced"):
            raise Fenced(refused_reason(run_id, canary))
        return RunGuard(run_id, canary, revision)

    async def confirm(self, guard: RunGuard) -> RunGuard:
        """Confirm by compare-and-set that the run is still not fenced; the new guard, or Fenced. A lost race with
        another shift of the run (a redelivery on another instance) reads the key again and tries once more."""
        key = ledger_key("run", guard.run_id, guard.canary)
        value = json.dumps({"fenced": False, "at": datetime.now(UTC).isoformat()}).encode()
        for _ in range(CONFIRM_ATTEMPTS):
            try:
                if guard.revision == 0:
                    revision = await self.kv.create(key, value)
                else:
                    revision = await self.kv.update(key, value, last=guard.revision)
                return RunGuard(guard.run_id, guard.canary, revision)
            except KeyWrongLastSequenceError:
                guard = await self.guard(guard.run_id, guard.canary)
        raise Fenced(f"run {guard.run_id}: could not confirm that {guard.canary} was not rolled back "
                     f"({CONFIRM_ATTEMPTS} lost races); nothing was changed")
