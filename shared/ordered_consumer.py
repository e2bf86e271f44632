"""A durable pull consumer read in batches and handled one message at a time, in the order it was delivered.

Why not FastStream's pull subscriber for the event feeds: it fetches one message per pull request (a round trip
before each event, and events queue behind it), or, with a larger batch, runs the messages of one fetch
concurrently (a decision could then be made on a later event before an earlier one). Here one pull asks for up
to ``batch`` messages and returns as soon as one is there (nats-server ends such a pull with the messages it has,
or with the first to arrive within ``wait_s``); they are handled in order, each acknowledged by the handler as
before (at-least-once: a message not acknowledged is delivered again).

Messages of a batch waiting for their turn are kept alive with in-progress acks, so a slow handler never lets
their ack_wait run out behind it; on stop, the message being handled finishes and the ones still waiting are
handed back at once (nak) for another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from golive.shared.secrets import redact

BATCH = 16  # messages per pull: a burst of events (one decision's) comes in one round trip
WAIT_S = 2.0  # a pull waits this long for a first message, then the next one asks again
RETRY_PAUSE_S = 0.5  # after a failed pull (no responders: the consumer is being recreated; reconnecting)


@dataclass
class OrderedConsumer:
    """Reads durable ``durable`` of ``stream`` (created with ``config`` when missing) and calls ``handle`` with
    each message, one at a time, in delivery order. ``handle`` acknowledges; an exception it raises is logged and
    the message is left unacknowledged (delivered again after ack_wait)."""

    stream: str
    durable: str
    subject: str
    config: ConsumerConfig
    handle: Callable[[Msg], Awaitable[None]]
    log: Any
    inbox_prefix: bytes
    keep_alive_s: float  # in-progress acks for the messages of a batch waiting behind a slow one
    batch: int = BATCH
    wait_s: float = WAIT_S
    running: bool = field(init=False, default=False)
    _sub: Any = field(init=False, default=None)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _fetching: bool = field(init=False, default=False)

    async def start(self, js: Any) -> None:
        """Bind to the durable consumer (creating it when missing) and start reading."""
        self._sub = await js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream,
                                            config=self.config, inbox_prefix=self.inbox_prefix)
        self.running = True
        self._task = asyncio.create_task(self._read(), name=f"consume {self.durable}")

    async def stop(self, grace_s: float) -> None:
        """Stop reading: a pull in progress is withdrawn, the message in hand gets up to ``grace_s`` to finish,
        and the messages of its batch still waiting are handed back."""
        self.running = False
        task, self._task = self._task, None
        if task is None:
            return
        sub, self._sub = self._sub, None
        with contextlib.suppress(nats.errors.Error):  # a closed connection: no pull request left to withdraw
            await sub.unsubscribe()
        if self._fetching:
            task.cancel()
        # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancel of the caller that arrives as the task ends
        await asyncio.wait({task}, timeout=grace_s)
        if not task.done():
            task.cancel()  # the message in hand outlived the grace: it is delivered again after ack_wait
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _read(self) -> None:
        while self.running:
            self._fetching = True
            try:
                messages = await self._sub.fetch(batch=self.batch, timeout=self.wait_s)
            except (nats.errors.TimeoutError, TimeoutError):
                continue  # nothing came within wait_s: ask again
            except nats.errors.Error:
                # no responders (the consumer deleted: shared/durables.py creates it again), a reconnect
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            finally:
                self._fetching = False
            await self._in_order(messages)

    async def _in_order(self, messages: list[Msg]) -> None:
        waiting = list(messages)
        keeper = asyncio.create_task(self._keep_waiting_alive(waiting)) if len(waiting) > 1 else None
        try:
            while waiting:
                msg = waiting.pop(0)
                if not self.running:  # stopping: the rest go to another instance now, not after ack_wait
                    for left in [msg, *waiting]:
                        with contextlib.suppress(nats.errors.Error):
                            await left.nak()
                    return
                try:
                    await self.handle(msg)
                except Exception as exc:  # the handler's own failure path failed (the bus away): redelivered later
                    self.log.error("message.unhandled", durable=self.durable, subject=msg.subject,
                                   error=redact(f"{type(exc).__name__}: {exc}"), action="delivered again after ack_wait")
        finally:
            if keeper is not None:
                keeper.cancel()

    async def _keep_waiting_alive(self, waiting: list[Msg]) -> None:
        while waiting:
            await asyncio.sleep(self.keep_alive_s)
            for msg in list(waiting):
                with contextlib.suppress(nats.errors.Error):
                    await msg.in_progress()
