"""One driver per run: a lease per run in the JetStream KV bucket ``<ROOT>_LEASES``.

A coordinator drives a run only while it holds the run's lease. It takes the lease with a create (the key
must not exist), renews it by compare-and-set on the revision it last wrote (every ttl/3), and deletes it
when the run ends. A holder that stops renewing (killed, frozen, cut off) loses the key after the bucket's
TTL; another coordinator then creates it and drives the run. The old holder's next renewal fails its
compare-and-set, so it learns it lost the run and drops it instead of driving it twice.

The decisions (is this lease mine, has it expired, is a renewal due, how to say who holds it) are pure
functions; ``Leases`` is the thin shell over the KV bucket.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import APIError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from golive.shared.buckets import open_bucket


@dataclass(frozen=True)
class Lease:
    """Who drives a run, since when, and when they last said they still do."""

    owner: str
    run_id: str
    since: datetime
    renewed_at: datetime
    revision: int = 0  # the KV revision this value was read at or written as: the compare-and-set token

    def to_json(self) -> bytes:
        return json.dumps({"owner": self.owner, "run_id": self.run_id, "since": self.since.isoformat(),
                           "renewed_at": self.renewed_at.isoformat()}).encode()

    @classmethod
    def from_json(cls, raw: bytes, revision: int) -> Lease:
        value = json.loads(raw)
        return cls(owner=value["owner"], run_id=value["run_id"], since=datetime.fromisoformat(value["since"]),
                   renewed_at=datetime.fromisoformat(value["renewed_at"]), revision=revision)


def new_owner_id() -> str:
    """``<hostname>:<pid>:<random>``: says where the holder runs; the random part tells restarts apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def is_mine(lease: Lease | None, owner: str) -> bool:
    return lease is not None and lease.owner == owner


def is_expired(lease: Lease, now: datetime, ttl_s: float) -> bool:
    """Not renewed within the TTL: its holder is gone (or frozen) and the run may be taken over."""
    return now >= lease.renewed_at + timedelta(seconds=ttl_s)


def held_by_other(lease: Lease | None, owner: str, now: datetime, ttl_s: float) -> bool:
    """Someone else holds a live lease: the run is theirs to drive."""
    return lease is not None and not is_mine(lease, owner) and not is_expired(lease, now, ttl_s)


def renewal_due(lease: Lease, now: datetime, ttl_s: float) -> bool:
    """Renew every ttl/3, so two missed renewals still leave the lease alive."""
    return now >= lease.renewed_at + timedelta(seconds=ttl_s / 3)


def seconds_until_expiry(lease: Lease, now: datetime, ttl_s: float) -> float:
    return max(0.0, (lease.renewed_at + timedelta(seconds=ttl_s) - now).total_seconds())


def describe_holder(lease: Lease, now: datetime) -> str:
    ago = max(0.0, (now - lease.renewed_at).total_seconds())
    return (f"run {lease.run_id} is driven by {lease.owner} (lease renewed {ago:.0f} s ago); "
            "waiting for it to end or expire")


class LeaseHeld(Exception):
    """Another coordinator holds a live lease on the run."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(f"run {lease.run_id} is driven by {lease.owner}")
        self.lease = lease


class LeaseLost(Exception):
    """Our compare-and-set failed: someone else wrote the lease (took the run over) or it expired and went."""


def leases_bucket(root: str) -> str:
    return f"{root.upper()}_LEASES"


class Leases:
    """The run leases of one coordinator process (``owner``), in a KV bucket whose TTL expires them."""

    def __init__(self, kv, owner: str, ttl_s: float) -> None:
        self.kv = kv
        self.owner = owner
        self.ttl_s = ttl_s

    @classmethod
    async def open(cls, js: JetStreamContext, root: str, ttl_s: float, owner: str | None = None,
                   replicas: int = 1) -> Leases:
        kv = await open_bucket(js, KeyValueConfig(
            bucket=leases_bucket(root), history=1, ttl=ttl_s, storage=StorageType.FILE, replicas=replicas,
            description="golive coordinator: which coordinator drives each run (expires unless renewed)",
        ))
        # the bucket's TTL is the one that expires keys: every coordinator must judge leases by it, even one
        # started with another GOLIVE_LEASE_TTL_S (open_bucket never changes an existing bucket)
        ttl_s = (await kv.status()).ttl or ttl_s
        return cls(kv, owner or new_owner_id(), ttl_s)

    async def holder(self, run_id: str) -> Lease | None:
        """The run's current lease, or None when nobody holds it."""
        try:
            entry = await self.kv.get(run_id)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if entry.value is None:
            return None
        return Lease.from_json(entry.value, entry.revision)

    async def acquire(self, run_id: str, now: datetime | None = None) -> Lease:
        """Take the run's lease: create it, or take over one that expired. LeaseHeld if someone else's is live."""
        now = now or datetime.now(UTC)
        lease = Lease(owner=self.owner, run_id=run_id, since=now, renewed_at=now)
        current = await self.holder(run_id)
        if held_by_other(current, self.owner, now, self.ttl_s):
            raise LeaseHeld(current)
        try:
            if current is None:
                revision = await self.kv.create(run_id, lease.to_json())
            else:  # ours from before, or expired but not yet removed: compare-and-set on what we read
                revision = await self.kv.update(run_id, lease.to_json(), last=current.revision)
        except KeyWrongLastSequenceError:
            # another coordinator won the race between our read and our write
            winner = await self.holder(run_id)
            if winner is None:
                raise LeaseLost(f"run {run_id}: lease changed while taking it; try again") from None
            raise LeaseHeld(winner) from None
        return replace(lease, revision=revision)

    async def renew(self, lease: Lease, now: datetime | None = None) -> Lease:
        """Extend our lease by compare-and-set; LeaseLost if anyone wrote it since (or it expired and went)."""
        renewed = replace(lease, renewed_at=now or datetime.now(UTC))
        try:
            revision = await self.kv.update(lease.run_id, renewed.to_json(), last=lease.revision)
        except KeyWrongLastSequenceError:
            raise LeaseLost(f"run {lease.run_id}: lease revision {lease.revision} is no longer the current one "
                            "(it expired, and another coordinator may have taken the run over)") from None
        return replace(renewed, revision=revision)

    async def release(self, lease: Lease) -> None:
        """Give the run up (it ended): delete the key, only if it is still the one we wrote."""
        try:
            await self.kv.delete(lease.run_id, last=lease.revision)
        except APIError:
            pass  # a wrong last revision: someone took it over already, theirs to keep
