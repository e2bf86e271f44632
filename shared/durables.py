"""Durable consumers that come back: a service's durable consumer that someone deleted is created again, and the
service says so (``consumer.recreated``).

Why a guard is needed: a pull subscription whose consumer is deleted does not fail. nats-py's fetch gets "no
responders" (ServiceUnavailableError), the pull loop (FastStream's for commands, shared/ordered_consumer.py for
events) swallows it and asks again, and the service runs on without ever getting another message: a deleted
``coordinator-events`` froze every new run, silently, for good.

The guard asks the server about each durable consumer of the service every few seconds and remembers how far it
got (its ack floor). When one is gone it creates it again with the same settings: a consumer of the command
queue from its first message (a work queue keeps only what is not yet done), an event consumer from just after
the ack floor last seen, so no event is skipped (a few handled ones may come again: handlers are idempotent).
The pull subscription already running asks the same consumer name, so it simply gets messages again. A consumer
whose filter someone changed (a create request that names it is taken as an update) gets its filter back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

CHECK_EVERY_S = 2.0


@dataclass
class Durable:
    """One durable pull consumer a service consumes from, as the service creates it."""

    stream: str
    name: str
    filter_subject: str
    ack_wait_s: float
    max_deliver: int
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    acked_up_to: int | None = None  # the ack floor (stream sequence) the last check saw

    def recreation(self) -> ConsumerConfig:
        """The settings to create the consumer again with, from where it had got to."""
        config = ConsumerConfig(
            name=self.name, durable_name=self.name, filter_subject=self.filter_subject, ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s, max_deliver=self.max_deliver, deliver_policy=self.deliver_policy)
        if self.deliver_policy is not DeliverPolicy.ALL and self.acked_up_to is not None:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = self.acked_up_to + 1
        return config


async def check_durable(js: Any, durable: Durable, log: Any) -> bool:
    """Note how far ``durable`` got, or create it again if it is gone (True: this call recreated it)."""
    try:
        info = await js.consumer_info(durable.stream, durable.name)
    except NotFoundError:
        config = durable.recreation()
        try:
            await js.add_consumer(durable.stream, config)
        except APIError as exc:  # another instance of the service recreated it first, from its own position
            log.info("consumer.recreated_elsewhere", consumer=durable.name, stream=durable.stream, error=str(exc))
            return False
        log.warning("consumer.recreated", consumer=durable.name, stream=durable.stream,
                    from_sequence=config.opt_start_seq, reason="the durable consumer was deleted")
        return True
    if info.config.filter_subject != durable.filter_subject:  # narrowed by a request naming it: put it back
        config = durable.recreation()
        config.deliver_policy, config.opt_start_seq = info.config.deliver_policy, info.config.opt_start_seq
        await js.add_consumer(durable.stream, config)
        log.warning("consumer.restored", consumer=durable.name, stream=durable.stream,
                    found_filter=info.config.filter_subject, filter=durable.filter_subject)
    durable.acked_up_to = info.ack_floor.stream_seq if info.ack_floor else None
    return False


async def keep_durables(js: Any, durables: Sequence[Durable], log: Any, every_s: float = CHECK_EVERY_S) -> None:
    """Check every durable consumer every ``every_s`` seconds until cancelled."""
    while True:
        for durable in durables:
            try:
                await check_durable(js, durable, log)
            except (nats.errors.Error, asyncio.TimeoutError) as exc:  # reconnecting: the next round checks again
                log.debug("consumer.check_failed", consumer=durable.name, error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(every_s)
