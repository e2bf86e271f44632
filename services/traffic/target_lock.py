"""One run per traffic target: a hold in the JetStream KV bucket ``<ROOT>_TRAFFIC_TARGETS``.

A traffic target is what a provider routes (``TrafficProvider.target``: an Envoy route's runtime keys, a Vercel
project, a dry-run file's canary entry). Two runs shifting one target undo each other (one's rollback sets the
canary to 0 right after the other promoted it), so a run holds its target from its first traffic step until it
ends. The key is a digest of the target (KV keys allow few characters); the value says who holds it, since
when, the canary weight read back when it was taken (what the run's first shift expects) and whether the run
may have changed traffic since (``applied``, written before its first change).

Taking is a create (the key must not exist), or a compare-and-set over the revision of a hold whose run is over:
two runs racing for a target cannot both win. A hold ends with its run: once the holder's last run_finished is
succeeded or rolled_back, the target is free. Nothing has to remember to release it, so a coordinator or a
traffic service killed at the end cannot leave a target held. A run that ended needs_human keeps its target
(traffic may be half way: nobody shifts over a broken state) until `golive retry` ends it otherwise. A holder
the event log does not know (its events expired) holds nothing.

The decisions are pure functions; ``TargetLocks`` is the thin shell over the bucket and the event log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from golive.shared.buckets import open_bucket
from golive.shared.envelope import Envelope
from golive.shared.event_log import last_events
from golive.shared.events import RunFinished
from golive.shared.run_guard import lifecycle_subjects, work_refusal
from golive.shared.subjects import Subjects

TAKE_ATTEMPTS = 3  # reads and writes of one take: each lost race reads the new holder and judges again

HolderRun = Literal["open", "ended", "needs_human", "unknown"]


@dataclass(frozen=True)
class Hold:
    """Run ``run_id`` holds ``target`` since ``since``; ``weight``: the canary weight read back when it took it;
    ``applied``: the run may have changed traffic on it (set before its first change, never unset)."""

    run_id: str
    target: str
    canary: str
    weight: int
    since: datetime
    applied: bool = False
    revision: int = 0  # the KV revision this value was read at or written as: the compare-and-set token

    def to_json(self) -> bytes:
        return json.dumps({"run_id": self.run_id, "target": self.target, "canary": self.canary, "weight": self.weight,
                           "since": self.since.isoformat(), "applied": self.applied}).encode()

    @classmethod
    def from_json(cls, raw: bytes, revision: int) -> Hold:
        value = json.loads(raw)
        return cls(run_id=value["run_id"], target=value["target"], canary=value["canary"], weight=int(value["weight"]),
                   since=datetime.fromisoformat(value["since"]), applied=bool(value.get("applied")), revision=revision)


class TargetHeld(Exception):
    """Another run holds the target: the reason names it and says what ends the hold."""


def targets_bucket(root: str) -> str:
    return f"{root.upper()}_TRAFFIC_TARGETS"


def target_key(target: str) -> str:
    """The KV key of a target: a digest, since a target names URLs and paths and keys allow only [-_=./A-Za-z0-9]."""
    return "t" + hashlib.sha256(target.encode()).hexdigest()[:40]


def holder_run(run_id: str, lifecycle: Sequence[Envelope]) -> HolderRun:
    """Where the holder's run stands, from its lifecycle events (the run guard's rule: open until its last
    run_finished, open again after a retry)."""
    refusal = work_refusal("golive.cmd.traffic.take.v1", run_id, lifecycle)
    if refusal is None:
        return "open"
    if not refusal.run_known:
        return "unknown"
    outcome = next(e.data.outcome for e in reversed(lifecycle) if isinstance(e.data, RunFinished))
    return "needs_human" if outcome == "needs_human" else "ended"


def still_held(hold: Hold | None, run_id: str, holder: HolderRun | None) -> bool:
    """Someone else holds the target: a hold of another run that is still going or needs a human."""
    return hold is not None and hold.run_id != run_id and holder in ("open", "needs_human")


def describe_hold(hold: Hold, holder: HolderRun) -> str:
    """Why a run cannot take the target, naming the holder and what ends its hold."""
    held = f"traffic target {hold.target} is held by run {hold.run_id} (since {hold.since:%Y-%m-%d %H:%M:%S} UTC)"
    if holder == "needs_human":
        return (f"{held}, which ended needs_human: it keeps the target so nobody shifts traffic over a broken state; "
                f"fix it and `golive retry {hold.run_id}`; nothing was changed")
    return f"{held}: one run per target at a time; start again once it ended; nothing was changed"


class TargetLocks:
    """The traffic targets' holds, in a KV bucket; holders judged by their runs' lifecycle in the event log."""

    def __init__(self, kv, js: JetStreamContext, subjects: Subjects) -> None:
        self.kv = kv
        self.js = js
        self.subjects = subjects

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects, log=None, replicas: int = 1) -> TargetLocks:
        kv = await open_bucket(js, KeyValueConfig(
            bucket=targets_bucket(subjects.root), history=1, storage=StorageType.FILE, replicas=replicas,
            description="golive traffic: which run holds each traffic target (until that run ends)",
        ), log)
        return cls(kv, js, subjects)

    async def hold_of(self, target: str) -> Hold | None:
        """The target's hold as stored (of a run that may have ended), or None."""
        try:
            entry = await self.kv.get(target_key(target))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return None if entry.value is None else Hold.from_json(entry.value, entry.revision)

    async def holder_run(self, run_id: str) -> HolderRun:
        events = await last_events(self.js, self.subjects.event_stream, lifecycle_subjects(self.subjects, run_id))
        return holder_run(run_id, [e for _seq, e in events])

    async def take(self, run_id: str, target: str, canary: str, read_weight: Callable[[], Awaitable[int]],
                   now: datetime | None = None) -> Hold:
        """Hold ``target`` for ``run_id`` (the run's own hold as it is, if it has one), reading the canary weight
        back with ``read_weight``. TargetHeld, naming the holder, while another run holds it."""
        for _ in range(TAKE_ATTEMPTS):
            current = await self.hold_of(target)
            if current is not None and current.run_id == run_id:
                return current  # taken before (a redelivery, a retry): the weight it found then stands
            holder = await self.holder_run(current.run_id) if current is not None else None
            if still_held(current, run_id, holder):
                raise TargetHeld(describe_hold(current, holder))
            hold = Hold(run_id=run_id, target=target, canary=canary, weight=await read_weight(),
                        since=now or datetime.now(UTC))
            try:
                if current is None:
                    revision = await self.kv.create(target_key(target), hold.to_json())
                else:  # the holder's run is over: compare-and-set on what we read
                    revision = await self.kv.update(target_key(target), hold.to_json(), last=current.revision)
            except KeyWrongLastSequenceError:
                continue  # another run wrote it between our read and our write: judge the new holder
            return replace(hold, revision=revision)
        raise TargetHeld(f"traffic target {target} changed hands {TAKE_ATTEMPTS} times while taking it; try again")

    async def mark_applied(self, hold: Hold) -> Hold:
        """Record, before the run's first change of traffic, that its compensation has something to undo."""
        if hold.applied:
            return hold
        for _ in range(TAKE_ATTEMPTS):
            try:
                revision = await self.kv.update(target_key(hold.target), replace(hold, applied=True).to_json(),
                                                last=hold.revision)
                return replace(hold, applied=True, revision=revision)
            except KeyWrongLastSequenceError:
                current = await self.hold_of(hold.target)
                if current is None or current.run_id != hold.run_id:
                    raise TargetHeld(f"traffic target {hold.target} is no longer held by run {hold.run_id}; "
                                     "nothing was changed") from None
                hold = current
                if hold.applied:
                    return hold
        raise TargetHeld(f"traffic target {hold.target}: its hold kept changing; nothing was changed")
