"""Keeping the leases of what one coordinator drives: runs (key: the run id) or post-deploy watches (``watch.<run>``).

A lease is taken when the driver starts driving, renewed every ttl/3 (on the clock, and before each decision, so a
coordinator frozen past its TTL learns it lost the run before deciding anything), and released when the run ends or
the coordinator stops. Lease writes have their own lock, apart from the driver's: a slow decision (artifacts, a
history read) must not hold up renewals, and one lease is never renewed twice at once (the second compare-and-set
would fail). The lease rules themselves are lease.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from golive.services.coordinator.lease import Lease, LeaseHeld, LeaseLost, Leases, held_by_other, is_expired, renewal_due
from golive.shared.bus import Bus, Defer
from golive.shared.secrets import redact

DEFER_S = 0.5  # an event of a run another coordinator drives comes back this soon (maybe to that one)


class LeaseKeeper:
    """The leases one driver holds (``held``, by run id), in the leases bucket under ``key(run_id)``.

    ``on_lost(run_id)``: the driver lets go of a run whose lease another coordinator took. Log lines are named
    ``<log_prefix>acquired``, ``released``, ``lost``, ``renew_failed``."""

    def __init__(self, bus: Bus, on_lost: Callable[[str], object], lost_action: str, log_prefix: str = "lease.",
                 key: Callable[[str], str] = str) -> None:
        self.bus = bus
        self.key = key
        self.on_lost = on_lost
        self.lost_action = lost_action
        self.log_prefix = log_prefix
        self.held: dict[str, Lease] = {}
        self._lock = asyncio.Lock()
        self._leases: Leases | None = None

    async def leases(self) -> Leases:
        if self._leases is None:
            self._leases = await Leases.open(self.bus.jetstream(), self.bus.subjects.root,
                                             self.bus.settings.lease_ttl_s, replicas=self.bus.settings.stream_replicas)
        return self._leases

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.held

    async def other_holder(self, run_id: str) -> Lease | None:
        """The live lease of another coordinator (the run is theirs to drive), or None."""
        leases = await self.leases()
        holder = await leases.holder(self.key(run_id))
        return holder if held_by_other(holder, leases.owner, datetime.now(UTC), leases.ttl_s) else None

    async def held_by_other(self, run_id: str) -> bool:
        """Another live coordinator holds the lease: the run is theirs to drive."""
        return await self.other_holder(run_id) is not None

    async def orphaned(self, run_id: str) -> bool:
        """Nobody holds a live lease: its driver ended or died (its lease expired)."""
        leases = await self.leases()
        holder = await leases.holder(self.key(run_id))
        return holder is None or is_expired(holder, datetime.now(UTC), leases.ttl_s)

    async def acquire(self, run_id: str) -> None:
        """Take the lease; Defer when another coordinator holds it (or won the race to it)."""
        leases = await self.leases()
        async with self._lock:
            try:
                self.held[run_id] = await leases.acquire(self.key(run_id))
            except (LeaseHeld, LeaseLost):
                raise Defer(DEFER_S) from None
        self.bus.log.info(f"{self.log_prefix}acquired", run_id=run_id, owner=leases.owner, ttl_s=leases.ttl_s)

    async def drives(self, run_id: str, take: Callable[[], Awaitable[object]]) -> bool:
        """Whether this driver holds ``run_id``'s lease to apply an event of it now: renewed if due, or taken by
        ``take()`` (the driver's own taking over) when it held none; False when ``take()`` found nothing to drive.
        Defer when the lease was lost: the run's new driver gets the event."""
        if run_id in self.held and not await self.still_held(run_id):
            raise Defer(DEFER_S)
        if run_id not in self.held:
            await take()
        return run_id in self.held

    async def adopt(self, run_id: str, lock: asyncio.Lock, take: Callable[[], Awaitable[object]]) -> bool:
        """Take ``run_id`` over if nobody holds a live lease on it (its driver died): ``take()``, under the driver's
        ``lock``. True when this driver holds it now; False when another driver is alive, when this one took it
        meanwhile, or when another coordinator took it first."""
        if not await self.orphaned(run_id):
            return False
        async with lock:
            if run_id in self.held:
                return False
            try:
                await take()
            except Defer:
                return False
        return run_id in self.held

    async def still_held(self, run_id: str) -> bool:
        """Our lease is live, or renewed now; otherwise the run is let go of (someone else drives it)."""
        leases = await self.leases()
        async with self._lock:
            lease, now = self.held.get(run_id), datetime.now(UTC)
            if lease is None:
                return False
            if not is_expired(lease, now, leases.ttl_s) and not renewal_due(lease, now, leases.ttl_s):
                return True
            try:
                self.held[run_id] = await leases.renew(lease, now)
                return True
            except LeaseLost as exc:
                self.held.pop(run_id, None)
                self.on_lost(run_id)
                self.bus.log.error(f"{self.log_prefix}lost", run_id=run_id, reason=str(exc), action=self.lost_action)
                return False

    async def renew_all(self) -> None:
        """One round of renewals (the clock's): each lease that is due, renewed."""
        for run_id in list(self.held):
            try:
                await self.still_held(run_id)
            except Exception as exc:  # the bus is away: the lease may still be ours; try again soon
                self.bus.log.warning(f"{self.log_prefix}renew_failed", run_id=run_id, error=redact(str(exc)))

    def let_go(self, run_id: str) -> None:
        """Forget the lease without releasing it (a run half taken: taking it again is a renewal)."""
        self.held.pop(run_id, None)

    async def release(self, run_id: str) -> None:
        """Give the lease back (the run ended, or this coordinator stops): another coordinator may take it at once."""
        async with self._lock:
            if (lease := self.held.pop(run_id, None)) is not None:
                await (await self.leases()).release(lease)
                self.bus.log.info(f"{self.log_prefix}released", run_id=run_id)
