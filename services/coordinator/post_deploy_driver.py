"""The post-deploy watch's shell: feeds run events and clock ticks to post_deploy.decide() and publishes
what it decides. Apart from the saga's driver on purpose: its own durable consumer (``coordinator-watch``),
its own lock and clock, so a week of watching never delays a go-live's decisions.

A watch this process does not hold (after a restart) is rebuilt from the run's events: at start for every
watch that began and did not end, and when an event of the watch arrives. Ids of checks and watch events
are deterministic, so a check or event published twice (two coordinators, a restart) is deduplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from contextlib import aclosing
from datetime import UTC, datetime

from services.coordinator.post_deploy import WatchState, decide
from services.coordinator.saga import EmitEvent, SendCommand, Tick
from shared.bus import Bus
from shared.commands import command_target
from shared.envelope import Envelope, new_envelope
from shared.event_log import read_events
from shared.events import RunFinished, RunStarted, WatchEnded, WatchStarted

TICK_S = 1.0
UNWATCHED_KEPT = 1_000


class PostDeployDriver:
    """Keeps the watches of succeeded runs whose plan has ``post_deploy``, one at a time under one lock."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.watches: dict[str, WatchState] = {}
        self.applied: dict[str, int] = {}  # last stream sequence folded into each watch
        # runs seen starting without post_deploy: their end needs no replay (bounded: oldest forgotten first)
        self.unwatched: deque[str] = deque(maxlen=UNWATCHED_KEPT)
        self.lock = asyncio.Lock()
        self._ticker: asyncio.Task | None = None

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        async with self.lock:
            run_id = envelope.runid
            state = self.watches.get(run_id)
            if state is None and not isinstance(envelope.data, RunStarted):
                if not _concerns_a_watch(envelope) or run_id in self.unwatched:
                    return
                state = await self._replay(run_id, before_seq=seq)
                if state is None:
                    return
            elif state is not None and seq <= self.applied.get(run_id, 0):
                return  # a redelivery of an event this watch already holds
            elif state is not None and state.watching and seq > self.applied.get(run_id, 0) + 1:
                state = await self._fold(state, run_id, after_seq=self.applied.get(run_id, 0), before_seq=seq)
            await self._apply(state, envelope, cause=envelope)
            self.applied[run_id] = max(seq, self.applied.get(run_id, 0))

    async def _apply(self, state: WatchState | None, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        if new is None and isinstance(item, Envelope) and isinstance(item.data, RunStarted):
            self.unwatched.append(item.runid)
        for out in outputs:
            if isinstance(out, SendCommand):
                service, action = command_target(type(out.data))
                envelope = new_envelope(out.data, id=out.id, source=self.bus.source, runid=new.run_id,
                                        subject=self.bus.subjects.command(service, action), correlationid=out.id,
                                        causationid=cause.id if cause else None)
                await self.bus.publish(envelope, envelope.subject or "", self.bus.subjects.command_stream)
            elif isinstance(out, EmitEvent):
                await self.bus.emit(out.data, run_id=new.run_id, event_id=out.id, cause=cause,
                                    correlationid=out.correlationid)
        if new is None:
            return
        if new.ended:
            self.watches.pop(new.run_id, None)
            self.applied.pop(new.run_id, None)
        else:
            self.watches[new.run_id] = new
        if outputs:
            self.bus.log.info("watch.decided", run_id=new.run_id, checks=new.checks_done, breaches=new.breaches,
                              outputs=[type(o.data).__name__ for o in outputs])

    async def _fold(self, state: WatchState, run_id: str, after_seq: int, before_seq: int) -> WatchState:
        """What another instance handled since (its outputs were its own to publish)."""
        js = self.bus.broker.connection.jetstream()
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id), from_seq=after_seq + 1,
                                        up_to_seq=before_seq - 1)) as feed:
            async for seq, envelope in feed:
                state, _ = decide(state, envelope)
                self.applied[run_id] = seq
        return state

    async def _replay(self, run_id: str, before_seq: int | None = None) -> WatchState | None:
        js = self.bus.broker.connection.jetstream()
        state: WatchState | None = None
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id),
                                        up_to_seq=before_seq - 1 if before_seq else None)) as feed:
            async for seq, envelope in feed:
                state, _ = decide(state, envelope)
                self.applied[run_id] = seq
        if state is None or state.ended:
            self.applied.pop(run_id, None)
            return None
        self.bus.log.info("watch.replayed", run_id=run_id, checks=state.checks_done, watching=state.watching)
        return state

    async def resume(self) -> None:
        """Pick up the watches that began and have not ended (this process restarted in the middle of one)."""
        js = self.bus.broker.connection.jetstream()
        root = self.bus.subjects.root
        begun: set[str] = set()
        for name, seen in ((WatchStarted, begun), (WatchEnded, None)):
            subject = f"{root}.evt.*.coordinator.{name.short_name()}"
            async with aclosing(read_events(js, subject)) as feed:
                async for _seq, envelope in feed:
                    if seen is not None:
                        seen.add(envelope.runid)
                    else:
                        begun.discard(envelope.runid)
        async with self.lock:
            for run_id in sorted(begun - set(self.watches)):
                if (state := await self._replay(run_id)) is not None:
                    self.watches[run_id] = state

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def stop_ticking(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick_forever(self) -> None:
        try:
            await self.resume()
        except Exception as exc:  # the stream is unreachable: watches resume when their next event comes
            self.bus.log.warning("watch.resume_failed", error=str(exc))
        while True:
            await asyncio.sleep(TICK_S)
            async with self.lock:
                for state in list(self.watches.values()):
                    if state.watching:
                        try:
                            await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                        except Exception as exc:  # publishing failed: the next tick tries again
                            self.bus.log.warning("watch.tick_failed", run_id=state.run_id, error=str(exc))


def _concerns_a_watch(envelope: Envelope) -> bool:
    """An event a watch this process does not hold must see: the run's end, or an answer to a check."""
    return isinstance(envelope.data, RunFinished) or (envelope.correlationid or "").startswith(f"{envelope.runid}/watch/")


def register_watch(bus: Bus) -> PostDeployDriver:
    """The post-deploy watch on ``bus``: its own consumer of the event stream (start its clock with start_ticking)."""
    driver = PostDeployDriver(bus)
    bus.consume_events(bus.subjects.all_events, "coordinator-watch", driver.on_event)
    return driver
