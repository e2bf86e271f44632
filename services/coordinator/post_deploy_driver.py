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

Its fold of the events (shared/fold.py), its leases (lease_keeper.py) and its clock (shared/ticking.py) are the parts
the run driver (service.py) uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

from golive.services.coordinator.active_runs import ActiveRuns, watch_key
from golive.services.coordinator.history import RunHistory, watch_record
from golive.services.coordinator.lease_keeper import DEFER_S, LeaseKeeper
from golive.services.coordinator.post_deploy import WatchState, check_command_id, decide
from golive.services.coordinator.saga import EmitEvent, Output, SendCommand, Tick
from golive.shared.bus import Bus, Defer
from golive.shared.envelope import Envelope
from golive.shared.events import RunFinished, RunStarted
from golive.shared.fold import RunFolds
from golive.shared.plan_versions import plan_data
from golive.shared.secrets import redact
from golive.shared.ticking import Ticking

TICK_S = 1.0
UNWATCHED_KEPT = 2_000  # runs known to have no watch, and watches that ended: their late events need no replay


class PostDeployDriver:
    """Drives the watches whose lease it holds (succeeded runs whose plan has ``post_deploy``), under one lock."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        # the watches this process drives, until they end; and, by id, runs whose plan has no watch and watches
        # that ended (bounded, oldest forgotten first: a coordinator that ran for months must not keep every run)
        self.folds: RunFolds[WatchState] = RunFolds(bus.jetstream, bus.subjects, UNWATCHED_KEPT)
        self.leases = LeaseKeeper(bus, on_lost=self.folds.forget, key=watch_key, log_prefix="watch.lease_",
                                  lost_action="stopped driving the watch: another coordinator drives it")
        self.lock = asyncio.Lock()
        self.clock = Ticking(bus.log)
        self.active = ActiveRuns.opened_once(bus)
        self.history = RunHistory.opened_once(bus)  # each watch's record, as `golive watch` lists them
        self.stopping = False

    @property
    def watches(self) -> dict[str, WatchState]:
        """The watches this process drives now, by run id."""
        return self.folds.states

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        """Fold one event of the stream into its watch. Defer: another coordinator drives that watch."""
        run_id = envelope.runid
        if isinstance(envelope.data, RunStarted):
            # a peek at the stored plan (upgraded, not validated): the fold reads it, through plan_of, if it has a watch
            if not plan_data(envelope.data).get("post_deploy"):
                self.folds.end(run_id)  # no watch in its plan: its end needs no replay
            return
        if not _concerns_a_watch(envelope) or run_id in self.folds.ended:
            return
        async with self.lock:
            if not await self.leases.drives(run_id, lambda: self._take(run_id, by="event")):
                return
            # events other instances handed back (Defer) may come after this one: applied first, in stream order,
            # with their outputs (nobody else applied them: we hold the lease)
            await self.folds.follow(envelope, seq, self._apply_event)

    async def _apply_event(self, envelope: Envelope) -> None:
        await self._apply(self.folds.states[envelope.runid], envelope, cause=envelope)

    async def _take(self, run_id: str, by: str) -> None:
        """Start driving a watch nobody live drives: its lease, its events, what nobody published yet."""
        if self.stopping:
            raise Defer(DEFER_S)  # stopping: another coordinator takes it
        if await self.leases.held_by_other(run_id):
            raise Defer(DEFER_S)
        state, _ = take_over([envelope for _seq, envelope in await self.folds.history(run_id)], self.bus.source)
        if not self._to_drive(run_id, state):
            return
        await self.leases.acquire(run_id)
        try:
            # read again under the lease: nothing another driver published before we took it is missed
            history = await self.folds.history(run_id)
            state, pending = take_over([envelope for _seq, envelope in history], self.bus.source)
            if not self._to_drive(run_id, state) or state is None:
                await self.leases.release(run_id)
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
                await self.leases.release(run_id)
            raise
        self.folds.keep(run_id, state, history[-1][0])
        await self._record(state)
        self.bus.log.info("watch.taken", run_id=run_id, by=by, checks=state.checks_done,
                          awaiting=state.sent_at is not None, pending=len(pending))
        if any(isinstance(out, SendCommand) for _cause, outputs in pending for out in outputs):
            await self._note_sent(state)

    def _to_drive(self, run_id: str, state: WatchState | None) -> bool:
        if state is None or state.ended:
            self.folds.end(run_id)  # no watch in its plan, or the watch is over
        return state is not None and state.watching

    async def take_over_orphans(self) -> None:
        """Take over every watch begun and not ended whose lease expired (its driver died): a watch between two
        checks sends no event for up to ``health_every``, so waiting for one would leave it undriven."""
        if self.stopping:
            return
        active = await self.active()
        for run_id in await active.watches():
            if run_id in self.leases:
                continue
            if run_id in self.folds.ended:
                await active.remove_watch(run_id)  # its driver died between watch_ended and saying so here
                continue
            if await self.leases.adopt(run_id, self.lock, lambda: self._take(run_id, by="adopt")):
                self.bus.log.info("watch.adopted", run_id=run_id,
                                  reason="its coordinator's lease expired; taken over without waiting for an event")
            elif run_id in self.folds.ended:
                await active.remove_watch(run_id)

    async def _apply(self, state: WatchState, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        await self._publish(state.run_id, outputs, cause)
        if new is None or state.run_id not in self.leases:
            return  # dropped meanwhile (our lease was lost): the new driver keeps it
        if watch_record(new) != watch_record(state):
            await self._record(new)
        if new.ended:
            await self._end(new.run_id)
        else:
            self.folds.states[new.run_id] = new
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
                envelope = self.bus.command_envelope(out.data, run_id=run_id, command_id=out.id, cause=cause)
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

    async def _record(self, state: WatchState) -> None:
        """Write the watch's record (shared/run_history.py): `golive watch` lists watches from these alone."""
        if (record := watch_record(state)) is None:
            return
        try:
            await (await self.history()).put_watch(record)
        except Exception as exc:  # only a stale line in `golive watch` until the next check
            self.bus.log.warning("watch.record_failed", run_id=state.run_id, error=redact(str(exc)))

    async def _end(self, run_id: str) -> None:
        self.folds.end(run_id)
        await self.leases.release(run_id)
        await (await self.active()).remove_watch(run_id)

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self.stopping = False
        self.clock.every(TICK_S, self._tick, "watch.tick_failed")
        self.clock.every(TICK_S / 2, self.leases.renew_all, "watch.lease_renew_failed")
        # at once on start: the watches of a coordinator that died (this one, before a restart)
        self.clock.every(TICK_S, self.take_over_orphans, "watch.adopt_failed", at_once=True)

    async def stop_ticking(self) -> None:
        """Stop ticking and hand every watch back (its lease released): another coordinator takes it at once."""
        self.stopping = True
        await self.clock.stop()
        for run_id in list(self.leases.held):
            try:
                await self.leases.release(run_id)
            except Exception as exc:  # the bus is away: the lease expires after its TTL instead
                self.bus.log.warning("watch.release_failed", run_id=run_id, error=redact(str(exc)))
        self.folds.clear()

    async def _tick(self) -> None:
        async with self.lock:
            for run_id in list(self.folds.states):
                try:
                    # a coordinator frozen past its TTL learns here that it lost the watch, before deciding
                    if await self.leases.still_held(run_id) and (state := self.folds.states.get(run_id)) \
                            and state.watching:
                        await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                except Exception as exc:  # publishing failed: the next tick tries again
                    self.bus.log.warning("watch.tick_failed", run_id=run_id, error=redact(str(exc)))


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
