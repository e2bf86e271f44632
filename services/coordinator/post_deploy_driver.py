"""The post-deploy watch's shell: feeds run events and clock ticks to post_deploy.decide() and publishes
what it decides. Apart from the saga's driver on purpose: its own durable consumer (``coordinator-watch``),
its own lock and clock, so a week of watching never delays a go-live's decisions.

One driver per watch, as per run: a coordinator ticks and decides a watch only while it holds the watch's lease
(key ``watch.<run_id>`` in the leases bucket, apart from the run's own lease, released when the run ends). It takes
the lease when the watch starts (the run's success) or when it takes a watch over, renews it every ttl/3 and releases
it when the watch ends. An event of a watch another live coordinator drives is handed back (Defer) so that one gets
it. A watch whose driver died is taken over once its lease expired, without waiting for an event: the watches begun
and not ended are listed in the active-runs bucket (active_runs.py), not found by reading the whole history.

Taking a watch over folds its events silently up to the last one a coordinator already handled, and applies the rest
with their outputs (an answer its dead driver never recorded). The check it last sent, noted in the active-runs
bucket after the send, is not sent again: each check command is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from contextlib import aclosing
from datetime import UTC, datetime

from services.coordinator.active_runs import ActiveRuns, watch_key
from services.coordinator.lease import (
    Lease,
    LeaseHeld,
    LeaseLost,
    Leases,
    held_by_other,
    is_expired,
    renewal_due,
)
from services.coordinator.post_deploy import WatchState, check_command_id, decide
from services.coordinator.saga import EmitEvent, Output, SendCommand, Tick
from shared.bus import Bus, Defer
from shared.commands import command_target
from shared.envelope import Envelope, new_envelope
from shared.event_log import read_events
from shared.events import RunFinished, RunStarted
from shared.plan_versions import plan_data
from shared.secrets import redact

TICK_S = 1.0
DEFER_S = 0.5  # an event of a watch another coordinator drives comes back this soon (maybe to that one)
UNWATCHED_KEPT = 1_000  # runs known to have no watch, and watches that ended: their late events need no replay


class PostDeployDriver:
    """Drives the watches whose lease it holds (succeeded runs whose plan has ``post_deploy``), under one lock."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.watches: dict[str, WatchState] = {}  # the watches this process drives, until they end
        self.applied: dict[str, int] = {}  # last stream sequence folded into each watch
        self.held: dict[str, Lease] = {}  # their leases
        # bounded (oldest forgotten first): a coordinator that ran for months must not keep every run it saw
        self.unwatched: deque[str] = deque(maxlen=UNWATCHED_KEPT)  # runs whose plan has no watch
        self.ended: deque[str] = deque(maxlen=UNWATCHED_KEPT)  # watches that ended
        self.lock = asyncio.Lock()
        # lease writes have their own lock: a decision (a history read) must not hold up renewals, and one lease is
        # never renewed twice at once (the second compare-and-set would fail)
        self._lease_lock = asyncio.Lock()
        self._leases: Leases | None = None
        self._active: ActiveRuns | None = None
        self._tasks: list[asyncio.Task] = []
        self.stopping = False

    async def leases(self) -> Leases:
        if self._leases is None:
            self._leases = await Leases.open(self.bus.broker.connection.jetstream(), self.bus.subjects.root,
                                             self.bus.settings.lease_ttl_s, replicas=self.bus.settings.stream_replicas)
        return self._leases

    async def active(self) -> ActiveRuns:
        if self._active is None:
            self._active = await ActiveRuns.open(self.bus.broker.connection.jetstream(), self.bus.subjects.root,
                                                 self.bus.settings.stream_replicas)
        return self._active

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        """Fold one event of the stream into its watch. Defer: another coordinator drives that watch."""
        run_id = envelope.runid
        if isinstance(envelope.data, RunStarted):
            # a peek at the stored plan (upgraded, not validated): the fold reads it, through plan_of, if it has a watch
            if not plan_data(envelope.data).get("post_deploy"):
                self.unwatched.append(run_id)  # its end needs no replay
            return
        if not _concerns_a_watch(envelope) or run_id in self.unwatched or run_id in self.ended:
            return
        async with self.lock:
            if run_id in self.held and not await self._still_held(run_id):
                raise Defer(DEFER_S)  # lost: its new driver gets the event
            if run_id not in self.held:
                await self._take(run_id, by="event")
                if run_id not in self.held:
                    return
            if seq <= self.applied[run_id]:
                return  # folded already (a redelivery, or read from the stream when taking the watch)
            # events other instances handed back (Defer) may come after this one: apply them first, in stream order
            await self._catch_up(run_id, after_seq=self.applied[run_id], before_seq=seq)
            if run_id in self.watches:
                await self._apply(self.watches[run_id], envelope, cause=envelope)
            if run_id in self.watches:  # not ended by it
                self.applied[run_id] = seq

    async def _take(self, run_id: str, by: str) -> None:
        """Start driving a watch nobody live drives: its lease, its events, what nobody published yet."""
        if self.stopping:
            raise Defer(DEFER_S)  # stopping: another coordinator takes it
        leases = await self.leases()
        if held_by_other(await leases.holder(watch_key(run_id)), leases.owner, datetime.now(UTC), leases.ttl_s):
            raise Defer(DEFER_S)
        state, _ = take_over([envelope for _seq, envelope in await self._history(run_id)], self.bus.source)
        if not self._to_drive(run_id, state):
            return
        await self._acquire(run_id)
        try:
            # read again under the lease: nothing another driver published before we took it is missed
            history = await self._history(run_id)
            state, pending = take_over([envelope for _seq, envelope in history], self.bus.source)
            if not self._to_drive(run_id, state):
                await self._release(run_id)
                return
            active = await self.active()
            note = await active.watch_note(run_id)
            state = restore_sent(state, note)
            await active.put_watch(run_id, note)  # listed before anything is published: a standby can adopt it
            for cause, outputs in pending:
                await self._publish(run_id, outputs, cause)
        except BaseException:
            # nothing kept half taken: the lease goes back, and the next try (a redelivery, the adopter) starts over
            with contextlib.suppress(Exception):
                await self._release(run_id)
            raise
        self.watches[run_id], self.applied[run_id] = state, history[-1][0]
        self.bus.log.info("watch.taken", run_id=run_id, by=by, checks=state.checks_done,
                          awaiting=state.sent_at is not None, pending=len(pending))
        if any(isinstance(out, SendCommand) for _cause, outputs in pending for out in outputs):
            await self._note_sent(state)

    def _to_drive(self, run_id: str, state: WatchState | None) -> bool:
        if state is None:
            self.unwatched.append(run_id)  # no watch in its plan
        elif state.ended:
            self.ended.append(run_id)
        return state is not None and state.watching

    async def take_over_orphans(self) -> None:
        """Take over every watch begun and not ended whose lease expired (its driver died): a watch between two
        checks sends no event for up to ``health_every``, so waiting for one would leave it undriven."""
        if self.stopping:
            return
        leases, active = await self.leases(), await self.active()
        for run_id in await active.watches():
            if run_id in self.held:
                continue
            if run_id in self.ended:
                await active.remove_watch(run_id)  # its driver died between watch_ended and saying so here
                continue
            holder = await leases.holder(watch_key(run_id))
            if holder is not None and not is_expired(holder, datetime.now(UTC), leases.ttl_s):
                continue
            async with self.lock:
                if run_id in self.held:
                    continue
                try:
                    await self._take(run_id, by="adopt")
                except Defer:
                    continue
            if run_id in self.held:
                self.bus.log.info("watch.adopted", run_id=run_id,
                                  reason="its coordinator's lease expired; taken over without waiting for an event")
            elif run_id in self.ended or run_id in self.unwatched:
                await active.remove_watch(run_id)

    async def _apply(self, state: WatchState, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        await self._publish(state.run_id, outputs, cause)
        if new is None or state.run_id not in self.held:
            return  # dropped meanwhile (our lease was lost): the new driver keeps it
        if new.ended:
            await self._end(new.run_id)
        else:
            self.watches[new.run_id] = new
            if any(isinstance(out, SendCommand) for out in outputs):
                await self._note_sent(new)
        if outputs:
            self.bus.log.info("watch.decided", run_id=new.run_id, checks=new.checks_done, breaches=new.breaches,
                              outputs=[type(o.data).__name__ for o in outputs])

    async def _publish(self, run_id: str, outputs: list[Output], cause: Envelope | None) -> None:
        """A decision's checks and events, in order, acknowledged together (none of them left half sent)."""
        batch: list[tuple[Envelope, str]] = []
        for out in outputs:
            if isinstance(out, SendCommand):
                service, action = command_target(type(out.data))
                envelope = new_envelope(out.data, id=out.id, source=self.bus.source, runid=run_id,
                                        subject=self.bus.subjects.command(service, action), correlationid=out.id,
                                        causationid=cause.id if cause else None)
                batch.append((envelope, self.bus.subjects.command_stream))
            elif isinstance(out, EmitEvent):
                batch.append((self.bus.event_envelope(out.data, run_id=run_id, event_id=out.id, cause=cause,
                                                      correlationid=out.correlationid), self.bus.subjects.event_stream))
        await self.bus.publish_all(batch)

    async def _note_sent(self, state: WatchState) -> None:
        """Say which check is out (after it was published): whoever takes the watch over does not send it again."""
        try:
            await (await self.active()).put_watch(state.run_id, sent_note(state))
        except Exception as exc:  # only costs a re-send under the same id if the watch is taken over
            self.bus.log.warning("watch.note_failed", run_id=state.run_id, error=redact(str(exc)))

    async def _end(self, run_id: str) -> None:
        self.watches.pop(run_id, None)
        self.applied.pop(run_id, None)
        self.ended.append(run_id)
        await self._release(run_id)
        await (await self.active()).remove_watch(run_id)

    async def _catch_up(self, run_id: str, after_seq: int, before_seq: int) -> None:
        js = self.bus.broker.connection.jetstream()
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id), from_seq=after_seq + 1,
                                        up_to_seq=before_seq - 1)) as feed:
            async for seq, envelope in feed:
                if run_id not in self.watches:
                    return
                # nobody else applied these (we hold the lease): apply them with their outputs
                await self._apply(self.watches[run_id], envelope, cause=envelope)
                if run_id in self.applied:
                    self.applied[run_id] = seq

    async def _history(self, run_id: str) -> list[tuple[int, Envelope]]:
        js = self.bus.broker.connection.jetstream()
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id))) as feed:
            return [item async for item in feed]

    # --- the lease ------------------------------------------------------------------------------

    async def _acquire(self, run_id: str) -> None:
        leases = await self.leases()
        async with self._lease_lock:
            try:
                self.held[run_id] = await leases.acquire(watch_key(run_id))
            except (LeaseHeld, LeaseLost):
                raise Defer(DEFER_S) from None
        self.bus.log.info("watch.lease_acquired", run_id=run_id, owner=leases.owner, ttl_s=leases.ttl_s)

    async def _still_held(self, run_id: str) -> bool:
        """Our lease is live, or renewed now; otherwise the watch is dropped (someone else drives it)."""
        leases = await self.leases()
        async with self._lease_lock:
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
                self.watches.pop(run_id, None)
                self.applied.pop(run_id, None)
                self.bus.log.error("watch.lease_lost", run_id=run_id, reason=str(exc),
                                   action="stopped driving the watch: another coordinator drives it")
                return False

    async def _release(self, run_id: str) -> None:
        async with self._lease_lock:
            if (lease := self.held.pop(run_id, None)) is not None:
                await (await self.leases()).release(lease)
                self.bus.log.info("watch.lease_released", run_id=run_id)

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self.stopping = False
        self._tasks = [asyncio.create_task(loop()) for loop in (self._tick_forever, self._renew_forever,
                                                                  self._adopt_forever)]

    async def stop_ticking(self) -> None:
        """Stop ticking and hand every watch back (its lease released): another coordinator takes it at once."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for run_id in list(self.held):
            try:
                await self._release(run_id)
            except Exception as exc:  # the bus is away: the lease expires after its TTL instead
                self.bus.log.warning("watch.release_failed", run_id=run_id, error=redact(str(exc)))
        self.watches.clear()
        self.applied.clear()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            async with self.lock:
                for run_id in list(self.watches):
                    try:
                        # a coordinator frozen past its TTL learns here that it lost the watch, before deciding
                        if await self._still_held(run_id) and (state := self.watches.get(run_id)) and state.watching:
                            await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                    except Exception as exc:  # publishing failed: the next tick tries again
                        self.bus.log.warning("watch.tick_failed", run_id=run_id, error=redact(str(exc)))

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S / 2)
            for run_id in list(self.held):
                try:
                    await self._still_held(run_id)
                except Exception as exc:  # the bus is away: the lease may still be ours; try again soon
                    self.bus.log.warning("watch.renew_failed", run_id=run_id, error=redact(str(exc)))

    async def _adopt_forever(self) -> None:
        while True:  # at once on start: the watches of a coordinator that died (this one, before a restart)
            try:
                await self.take_over_orphans()
            except Exception as exc:  # the bus is away: the next round tries again
                self.bus.log.warning("watch.adopt_failed", error=redact(str(exc)))
            await asyncio.sleep(TICK_S)


# --- the functional core of taking a watch over ---------------------------------------------------

Pending = list[tuple[Envelope, list[Output]]]  # decisions to publish, each with the event that caused it


def take_over(history: list[Envelope], coordinator_source: str) -> tuple[WatchState | None, Pending]:
    """The watch of a run's ``history`` and the decisions nobody published yet, each with its cause.

    Folded silently up to the last event a coordinator already handled, then each later event decided again, keeping
    its outputs: its driver died before publishing them (an answer it never recorded, the run's end that starts the
    watch). Decisions already published among them are the watch's own events: folding those changes nothing."""
    done = handled_through(history, coordinator_source)
    state: WatchState | None = None
    for envelope in history[:done + 1]:
        state, _ = decide(state, envelope)
    pending: Pending = []
    for envelope in history[done + 1:]:
        state, outputs = decide(state, envelope)
        if outputs:
            pending.append((envelope, outputs))
    return state, pending


def handled_through(history: list[Envelope], coordinator_source: str) -> int:
    """Index of the cause of the last decision a coordinator made on an event of ``history`` (-1: none).

    Its driver applies a watch's events in stream order (those handed back by other instances first), so that event
    and all before it were handled. A decision of the clock proves nothing of the kind here: an answer another
    instance was handing back may sit before it, unhandled (unlike service.handled_through for a run)."""
    position = {envelope.id: i for i, envelope in enumerate(history)}
    for envelope in reversed(history):
        if envelope.source == coordinator_source and envelope.causationid in position:
            return position[envelope.causationid]
    return -1


def sent_note(state: WatchState) -> bytes:
    """What to keep of a check that is out: its index and when it was sent."""
    if state.sent_at is None:
        return b""
    return json.dumps({"check": state.checks_done, "sent_at": state.sent_at.isoformat()}).encode()


def restore_sent(state: WatchState, note: bytes) -> WatchState:
    """The watch with the check its last driver noted as sent still awaited, as if this process had sent it then:
    not sent again, and answered or timed out from when it went out. A note of a check already answered is stale."""
    if not note or state.sent_at is not None or not state.watching:
        return state
    try:
        sent = json.loads(note)
        index, sent_at = int(sent["check"]), datetime.fromisoformat(sent["sent_at"])
    except (ValueError, KeyError, TypeError):
        return state  # unreadable: the check is sent again (same id: JetStream drops it within its window)
    if index != state.checks_done:
        return state
    # the tick that sent it, decided again: the same schedule, its outputs published back then
    resent, outputs = decide(state, Tick(sent_at))
    if not any(isinstance(out, SendCommand) and out.id == check_command_id(state.run_id, index) for out in outputs):
        return state
    return resent


def _concerns_a_watch(envelope: Envelope) -> bool:
    """An event a watch must see: the run's end (it may start the watch), an answer to a check, the watch's own."""
    watch = f"{envelope.runid}/watch/"
    return isinstance(envelope.data, RunFinished) or (envelope.correlationid or "").startswith(watch)


def register_watch(bus: Bus) -> PostDeployDriver:
    """The post-deploy watch on ``bus``: its own consumer of the event stream (start its clock with start_ticking)."""
    driver = PostDeployDriver(bus)
    # max_deliver -1: an event of a watch another coordinator drives is handed back (Defer) as often as needed
    bus.consume_events(bus.subjects.all_events, "coordinator-watch", driver.on_event, max_deliver=-1)
    return driver
