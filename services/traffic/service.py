"""Traffic service shell: shift, rollback and promote commands, each read back and reported as read back.

After every change the weight is read back from the provider and reported (``verified_weight``); whether it is
right is the saga's one rule for all three (services/coordinator/read_back.py), not judged here.

Ordering and concurrency (the service takes several commands at once, see golive/serve.py):
- shifts of one canary run one at a time (a lock per canary), so two shifts never interleave;
- a rollback takes no lock: it fences the run (a shift of that run on any instance, in flight or arriving later,
  e.g. redelivered, is refused or undoes itself: services/traffic/ledger.py says in which order), cancels the
  shifts of that canary still in flight in this process and sets the weight at once. It never waits behind a
  slow shift, and it never checks for drift: the way back is always open.
Idempotence: the same shift twice changes traffic once (already there -> no change); a shift redelivered
after a crash, to any instance, reports the weight its first attempt found, from the ledger.
Several instances share nothing but the bus: the ledger and the targets' holds are JetStream KV buckets.
One run per target (services/traffic/target_lock.py): a run takes its provider's target before its first shift
(take; a shift or promote of a run that has not takes it then) and holds it until the run ends; another run's
take, shift or promote is refused with the holder's run id. A rollback changes traffic only when its run holds
the target and may have changed it: the compensation of a shift that was refused or never applied changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from golive.services.traffic.drift import judge_shift
from golive.services.traffic.ledger import Fenced, Ledger, RunGuard
from golive.services.traffic.provider import ProviderError, TrafficProvider, build_provider
from golive.services.traffic.target_lock import Hold, TargetHeld, TargetLocks
from golive.shared.bus import Bus, CommandError, Work
from golive.shared.commands import (
    PromoteTraffic,
    ProviderSpec,
    RollbackTraffic,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.events import (
    TrafficDrift,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
)
from golive.shared.secrets import redact

KEEPER_EVERY_S = 2.0  # how often the weights of an envoy proxy are checked (and re-asserted after a restart)


class SupersededByRollback(Exception):
    pass


class Traffic:
    """The traffic service's state: providers (one per spec, reused), locks, in-flight shifts, the ledger."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.state_dir = bus.settings.state_dir
        self._ledger: Ledger | None = None
        self.providers: dict[str, TrafficProvider] = {}
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.in_flight: defaultdict[str, set[asyncio.Task]] = defaultdict(set)
        self.watched: dict[tuple[str, str], TrafficProvider] = {}  # (spec key, canary) -> provider
        self.keeper: asyncio.Task | None = None
        self._targets: TargetLocks | None = None
        self.weight_gauge = Gauge(
            "golive_traffic_weight_percent", "Share of traffic per deployment role (canary, stable), as read back "
            "from the provider", ["provider", "role"], registry=bus.metrics.registry,
            # by role, never by deployment id: one series per deployment ever shifted would grow without end
        )

    # --- wiring ---------------------------------------------------------------------------------

    def provider(self, spec: ProviderSpec) -> tuple[str, TrafficProvider]:
        key = spec.model_dump_json()
        if key not in self.providers:
            try:
                self.providers[key] = build_provider(spec, self.state_dir)
            except ProviderError as exc:
                raise CommandError(str(exc), "invalid") from None
        return key, self.providers[key]

    async def start_ticking(self) -> None:
        self.keeper = asyncio.create_task(self._keep_weights())

    async def stop_ticking(self) -> None:
        if self.keeper:
            self.keeper.cancel()

    async def _keep_weights(self) -> None:
        """Read back the weights of every proxy this service shifted: a provider that lost its weights (an Envoy
        restart) re-asserts them on read, so traffic goes back where golive put it without waiting for a command."""
        while True:
            await asyncio.sleep(KEEPER_EVERY_S)
            for (_, canary), provider in list(self.watched.items()):
                try:
                    await provider.weight(canary)
                except Exception as exc:  # a background check: log, keep checking, never take the service down
                    self.bus.log.warning("traffic.keeper_failed", provider=provider.name, canary=canary,
                                         reason=redact(f"{type(exc).__name__}: {exc}"))

    def _gauge(self, provider: TrafficProvider, canary: str, stable: str | None, weight: int) -> None:
        self.weight_gauge.labels(provider.name, "canary").set(weight)
        if stable:
            self.weight_gauge.labels(provider.name, "stable").set(100 - weight)

    async def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = await Ledger.open(self.bus.jetstream(), self.bus.subjects.root,
                                             self.bus.settings.stream_replicas, self.bus.log)
        return self._ledger

    # --- the run's hold on its target ---------------------------------------------------------------

    async def targets(self) -> TargetLocks:
        if self._targets is None:
            self._targets = await TargetLocks.open(self.bus.jetstream(), self.bus.subjects,
                                                   self.bus.log, self.bus.settings.stream_replicas)
        return self._targets

    async def _hold(self, run_id: str, provider: TrafficProvider, canary: str, stable: str | None) -> Hold:
        """The run's hold on the pair's target, taken now if the run has none; refused while another run holds it."""
        try:
            return await (await self.targets()).take(run_id, provider.target(canary, stable), canary,
                                                     lambda: provider.weight(canary))
        except TargetHeld as exc:
            raise CommandError(str(exc), "invalid") from None

    async def _before_change(self, hold: Hold) -> Hold:
        """Written before the run first changes traffic: from then on its rollback has something to undo."""
        try:
            return await (await self.targets()).mark_applied(hold)
        except TargetHeld as exc:
            raise CommandError(str(exc), "invalid") from None

    async def on_take(self, cmd: TakeTrafficTarget, work: Work) -> TrafficTargetTaken:
        """Hold the target for the run and read its weight back (what the run's first shift expects)."""
        _, provider = self.provider(cmd.provider)
        try:
            hold = await self._hold(work.envelope.runid, provider, cmd.canary, cmd.stable)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        return TrafficTargetTaken(provider=provider.name, canary=cmd.canary, target=hold.target, weight=hold.weight)

    # --- shift ----------------------------------------------------------------------------------

    async def on_shift(self, cmd: ShiftTraffic, work: Work) -> TrafficShifted | TrafficDrift:
        inner = asyncio.create_task(self._shift(cmd, work))
        self.in_flight[cmd.canary].add(inner)
        try:
            return await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves (shutdown): not a rollback's doing
            raise CommandError(f"shift of {cmd.canary} to {cmd.weight}% superseded by a rollback", "fatal") from None
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        finally:
            self.in_flight[cmd.canary].discard(inner)

    async def _shift(self, cmd: ShiftTraffic, work: Work) -> TrafficShifted | TrafficDrift:
        started = time.perf_counter()
        run_id, command_id = work.envelope.runid, work.envelope.id
        key, provider = self.provider(cmd.provider)
        ledger = await self.ledger()
        async with self.locks[cmd.canary]:
            guard = await self._guard(ledger.guard(run_id, cmd.canary), cmd.weight)
            hold = await self._hold(run_id, provider, cmd.canary, cmd.stable)
            observed = await provider.weight(cmd.canary)
            guard = await self._guard(ledger.confirm(guard), cmd.weight)  # C1: not rolled back before we read
            expected = cmd.expected_previous_weight
            if expected is None:
                last = await ledger.last_set(f"{key}|{cmd.canary}")
                expected = hold.weight if last is None else last
            decision = judge_shift(observed, cmd.weight, expected)
            recorded = await ledger.before(command_id)
            before = observed if recorded is None else recorded
            if decision.action == "drift":
                self.bus.log.warning("traffic.drift", canary=cmd.canary, expected=expected, observed=observed)
                return TrafficDrift(provider=provider.name, canary=cmd.canary, requested_weight=cmd.weight,
                                    expected_weight=expected, observed_weight=observed)
            if decision.action == "shift":
                # written before the change: a redelivery after a crash reports the weight this command found
                before = await ledger.remember_before(command_id, observed)
                hold = await self._before_change(hold)
                guard = await self._guard(ledger.confirm(guard), cmd.weight)  # C2: right before the provider call
                await self._change_unless_fenced(guard, provider, cmd.stable, hold.target,
                                                 lambda: provider.set_weight(cmd.canary, cmd.stable, cmd.weight),
                                                 f"shift of {cmd.canary} to {cmd.weight}%")
            after = await provider.verify(cmd.canary, cmd.weight)
            await ledger.record_set(f"{key}|{cmd.canary}", after)
        self.watched[(key, cmd.canary)] = provider
        self._gauge(provider, cmd.canary, cmd.stable, after)
        return TrafficShifted(
            provider=provider.name, canary=cmd.canary, weight=cmd.weight, verified_weight=after, before=before,
            after=after, verified=after == cmd.weight, changed=before != cmd.weight,
            duration_s=round(time.perf_counter() - started, 6),
        )

    async def _guard(self, check: Awaitable[RunGuard], weight: int | None = None) -> RunGuard:
        """A fence check (ledger.guard or ledger.confirm): a fenced run's command is refused, nothing changed."""
        try:
            return await check
        except Fenced as exc:
            action = "promote refused" if weight is None else f"shift to {weight}% refused"
            raise CommandError(f"{exc}; {action}", "fatal") from None

    async def _change_unless_fenced(self, guard: RunGuard, provider: TrafficProvider, stable: str | None,
                                    target: str, change: Callable[[], Awaitable[None]], what: str) -> None:
        """Call the provider (``change``), then confirm once more (C3): if the run was fenced meanwhile, its
        rollback may have set the canary back before this call landed, so undo it the rollback's way (on the run's
        own hold only) and refuse."""
        ledger = await self.ledger()
        try:
            await change()
        finally:
            try:
                await ledger.confirm(guard)
                fenced = False
            except Fenced:
                fenced = True
            if fenced:
                hold = await (await self.targets()).hold_of(target)
                if hold is not None and hold.run_id == guard.run_id:
                    await provider.rollback(guard.canary, stable)
                self.bus.log.warning("traffic.undone_after_rollback", canary=guard.canary, what=what)
                raise CommandError(f"{what} superseded by a rollback (undone)", "fatal")

    # --- rollback -------------------------------------------------------------------------------

    async def on_rollback(self, cmd: RollbackTraffic, work: Work) -> TrafficRolledBack:
        started = time.perf_counter()
        key, provider = self.provider(cmd.provider)
        ledger = await self.ledger()
        # F, first: from here on no shift of this run reaches the provider unnoticed, on any instance (ledger.py)
        await ledger.fence(work.envelope.runid, cmd.canary)
        shifts = [t for t in self.in_flight[cmd.canary] if not t.done()]
        for task in shifts:
            task.cancel()
        # both read after the fence, together: one round trip before traffic goes back, not two
        before, hold = await asyncio.gather(ledger.last_set(f"{key}|{cmd.canary}"),
                                            (await self.targets()).hold_of(provider.target(cmd.canary, cmd.to)))
        if hold is None or hold.run_id != work.envelope.runid or not hold.applied:
            return await self._nothing_to_roll_back(cmd, provider, started, len(shifts))
        try:
            # set first, read after: the fastest way back (the weight before comes from the ledger)
            await provider.rollback(cmd.canary, cmd.to)
            after = await provider.verify(cmd.canary, 0)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        await ledger.record_set(f"{key}|{cmd.canary}", after)
        self.watched[(key, cmd.canary)] = provider
        self._gauge(provider, cmd.canary, cmd.to, after)
        return TrafficRolledBack(provider=provider.name, canary=cmd.canary, to=cmd.to, verified_weight=after,
                                 before=before, cancelled_shifts=len(shifts),
                                 duration_s=round(time.perf_counter() - started, 6))

    async def _nothing_to_roll_back(self, cmd: RollbackTraffic, provider: TrafficProvider, started: float,
                                    cancelled: int) -> TrafficRolledBack:
        """The run never moved traffic on this target (its shifts were refused or never applied, or another run
        holds it): undoing nothing is changing nothing. The weight is read back as it stands."""
        try:
            now = await provider.weight(cmd.canary)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        return TrafficRolledBack(provider=provider.name, canary=cmd.canary, to=cmd.to, verified_weight=now, before=now,
                                 cancelled_shifts=cancelled, duration_s=round(time.perf_counter() - started, 6),
                                 changed=False)

    # --- promote --------------------------------------------------------------------------------

    async def on_promote(self, cmd: PromoteTraffic, work: Work) -> TrafficPromoted:
        started = time.perf_counter()
        key, provider = self.provider(cmd.provider)
        ledger = await self.ledger()
        try:
            async with self.locks[cmd.canary]:
                guard = await self._guard(ledger.guard(work.envelope.runid, cmd.canary))
                hold = await self._before_change(await self._hold(work.envelope.runid, provider, cmd.canary,
                                                                  cmd.stable))
                guard = await self._guard(ledger.confirm(guard))  # the shift's order: ledger.py
                await self._change_unless_fenced(guard, provider, cmd.stable, hold.target,
                                                 lambda: provider.promote(cmd.canary, cmd.stable),
                                                 f"promote of {cmd.canary}")
                after = await provider.verify(cmd.canary, 100)
                await ledger.record_set(f"{key}|{cmd.canary}", after)
        except ProviderError as exc:
            raise CommandError(str(exc), "transient" if exc.transient else "fatal") from None
        self._gauge(provider, cmd.canary, cmd.stable, after)
        return TrafficPromoted(provider=provider.name, canary=cmd.canary, verified_weight=after,
                               duration_s=round(time.perf_counter() - started, 6))


def register(bus: Bus) -> Traffic:
    """Wire the traffic service's command handlers onto ``bus``."""
    # httpx logs every request at INFO: the keeper's read-backs every few seconds would drown the service's log
    logging.getLogger("httpx").setLevel(logging.WARNING)
    traffic = Traffic(bus)
    bus.guard_runs = True  # traffic of a run that is unknown or has ended is never touched (shared/run_guard.py)
    bus.on_command(TakeTrafficTarget, traffic.on_take)
    bus.on_command(ShiftTraffic, traffic.on_shift)
    bus.on_command(RollbackTraffic, traffic.on_rollback)
    bus.on_command(PromoteTraffic, traffic.on_promote)
    return traffic
