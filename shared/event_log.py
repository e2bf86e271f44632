"""Reading the event stream as a log: a run's events in order, from the first.

Used by the coordinator to rebuild a run after a restart and by `golive events` to show one. Only events whose
subject, envelope and type agree on who sent them are read (shared/provenance.py): a forged event, dead-lettered
when it arrived, is never folded into a run on replay either.

Each read goes through a pull consumer of its own, named in the create subject (``<user>-read-<random>``, the user
from the connection's inbox prefix): deploy/nats.conf lets readers create consumers only that way, where the server
refuses a request naming another consumer, and denies them the services' durable names. (nats-py's ordered consumer
creates its consumers on the unnamed subject, which takes a ``name`` in the body as an update of that consumer: who
may send it could narrow ``coordinator-events`` and freeze every run.) The consumer is ephemeral: nothing is acked,
and the server deletes it when idle, so a reader never deletes one. Should it vanish or skip a message (a lost pull,
the consumer deleted, the reader idle too long between two events), the read goes on from the next stream sequence
with a new one.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncGenerator
from contextlib import suppress
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header, StatusCode
from nats.js.errors import NotFoundError

from golive.shared.backoff import Backoff
from golive.shared.envelope import Envelope, ParseError, parse_envelope
from golive.shared.provenance import event_origin_problem

BATCH = 256  # events per pull: a run's whole log in one or two round trips
IDLE_S = 5.0  # the server deletes a reader's consumer this long after its last pull
FOLLOW_WAIT_S = 3.0  # a follower's pull waits this long for a new event, then asks again (under IDLE_S: kept alive)
API = "$JS.API"  # golive uses no JetStream domain (deploy/nats.conf grants these subjects)
REOPEN = Backoff(base_s=1.0, cap_s=5.0)  # a follower that keeps losing its consumer: 1 s, 2 s, 4 s, then 5 s


async def read_events(
    js: JetStreamContext, subject: str, *, from_seq: int | None = None, up_to_seq: int | None = None,
    follow: bool = False, patience_s: float = 10.0,
) -> AsyncGenerator[tuple[int, Envelope], None]:
    """Yield (stream sequence, envelope) for every event on ``subject`` from the first (or from ``from_seq``).

    Stops at the end of the stream (or at ``up_to_seq``); with ``follow`` it waits for new events until
    cancelled. Messages that do not parse, and events from a sender they do not belong to, are skipped here:
    the dead-letter path already kept them with the reason. Raises TimeoutError when the server stops answering
    for ``patience_s`` before the end of the log.
    """
    root = subject.split(".", 1)[0]
    if up_to_seq is not None and from_seq is not None and from_seq > up_to_seq:
        return
    reader = LogReader(js, await js.find_stream_name_by_subject(subject), subject, patience_s)
    try:
        pending = await reader.open(from_seq or 1)
        if not follow and pending == 0:
            return
        failures = 0  # pulls in a row that got nothing, the consumer gone or silent
        caught_up = pending == 0
        while True:
            try:
                messages = await reader.pull(wait_s=FOLLOW_WAIT_S if follow and caught_up else None)
            except ReaderLost as lost:
                failures += 1
                if not follow and failures > 1:
                    raise TimeoutError(f"events on {subject} stopped arriving before the end of the stream: "
                                       f"{lost}") from None
                if failures > 1:  # a follower that keeps losing its consumer: not one new consumer after another
                    await asyncio.sleep(REOPEN.delay(failures - 1))
                await reader.open(reader.next_seq)
                continue
            failures = 0
            if not messages:  # nothing new: the end of the log, or a follower's wait that ran out
                if not follow:
                    return
                caught_up = True
                continue
            for msg in messages:
                seq, left = msg.metadata.sequence.stream, msg.metadata.num_pending
                if up_to_seq is not None and seq > up_to_seq:
                    return
                reader.next_seq = seq + 1
                if (envelope := trusted_event(msg.subject, msg.data, root)) is not None:
                    yield seq, envelope
                caught_up = left == 0
                if caught_up and not follow or seq == up_to_seq:
                    return
    finally:
        await reader.close()


class ReaderLost(Exception):
    """The reader's consumer is gone, skipped a message or stopped answering: read on with a new one."""


class LogReader:
    """One read of the log: a named, ephemeral pull consumer on ``subject`` and the inbox its messages come to,
    replaced by a new one from the next stream sequence when it is lost."""

    def __init__(self, js: JetStreamContext, stream: str, subject: str, patience_s: float,
                 deliver: DeliverPolicy = DeliverPolicy.ALL) -> None:
        self.js, self.stream, self.subject, self.patience_s = js, stream, subject, patience_s
        self.deliver = deliver  # ALL (a log), or LAST_PER_SUBJECT (a bucket's values: shared/run_history.py)
        self.nc: Any = js._nc  # nats-py keeps the connection private; the pulls are plain requests on it
        self.next_seq = 1  # the first stream sequence not yet read (read_events moves it on as it reads)
        self.name: str | None = None
        self._inbox: Any = None
        self._consumer_seq = 0  # the last delivery of this consumer: each must follow the one before

    async def open(self, start_seq: int) -> int:
        """Read from stream sequence ``start_seq`` with a new consumer; how many events it has to deliver."""
        await self.close()
        self.next_seq, self._consumer_seq = start_seq, 0
        self.name = reader_name(self.nc.new_inbox())
        config = ConsumerConfig(
            name=self.name, filter_subject=self.subject, ack_policy=AckPolicy.NONE, inactive_threshold=IDLE_S,
            mem_storage=True, num_replicas=1, deliver_policy=self.deliver)
        if start_seq > 1:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, start_seq
        # a config with a name (and a filter) is created on CONSUMER.CREATE.<stream>.<name>.<filter>
        info = await self.js.add_consumer(self.stream, config, timeout=self.patience_s)
        self._inbox = await self.nc.subscribe(self.nc.new_inbox())
        return info.num_pending or 0

    async def pull(self, wait_s: float | None = None) -> list[Msg]:
        """The next events, up to BATCH: those there are now, or with ``wait_s`` the first to come within it
        (none when it runs out). Raises ReaderLost when the consumer is gone, silent or skipped one (what this pull
        got is dropped then: the next consumer starts at ``next_seq`` again)."""
        request: dict[str, Any] = {"batch": BATCH, "no_wait": True}
        if wait_s is not None:  # one is enough to return: the next pull takes the rest at once
            request = {"batch": 1, "expires": int(wait_s * 1e9)}
        await self.nc.publish(f"{API}.CONSUMER.MSG.NEXT.{self.stream}.{self.name}", json.dumps(request).encode(),
                              reply=self._inbox.subject)
        messages: list[Msg] = []
        while len(messages) < request["batch"]:
            try:
                msg = await self._inbox.next_msg(timeout=(wait_s or 0) + self.patience_s)
            except (NatsTimeoutError, TimeoutError):
                raise ReaderLost(f"no answer from consumer {self.name} in {self.patience_s:g} s") from None
            status = msg.headers.get(Header.STATUS) if msg.headers else None
            if status in (StatusCode.NO_MESSAGES, StatusCode.REQUEST_TIMEOUT):  # no more for this pull
                break
            if status == StatusCode.CONTROL_MESSAGE:
                continue
            if status:  # 409 consumer deleted, 503 no such consumer (deleted when idle), ...
                description = msg.headers.get(Header.DESCRIPTION, "")
                raise ReaderLost(f"consumer {self.name}: {status} {description}".strip())
            delivered = msg.metadata.sequence
            if delivered.consumer != self._consumer_seq + 1:  # a delivery went missing: read again from it
                raise ReaderLost(f"consumer {self.name} skipped deliveries {self._consumer_seq + 1}.."
                                 f"{delivered.consumer - 1}")
            self._consumer_seq = delivered.consumer
            messages.append(msg)
        return messages

    async def close(self) -> None:
        """Stop receiving; the server deletes the consumer once idle (readers may not delete consumers)."""
        if self._inbox is not None:
            inbox, self._inbox = self._inbox, None
            with suppress(NatsError):  # the connection closed first: nothing left to stop
                await inbox.unsubscribe()


def reader_name(inbox: str) -> str:
    """``<user>-read-<random>`` for a reader whose replies come to ``inbox`` (``_INBOX_<user>.…``,
    shared/settings.py), ``read-<random>`` on NATS's shared ``_INBOX``: never one of the services' durable names."""
    owner = re.sub(r"[^A-Za-z0-9_-]", "_", inbox.rsplit(".", 1)[0].removeprefix("_INBOX").lstrip("_"))
    return f"{owner}-read-{secrets.token_hex(8)}" if owner else f"read-{secrets.token_hex(8)}"


def trusted_event(subject: str, body: bytes, root: str) -> Envelope | None:
    """The event ``body`` received on ``subject``, or None when it does not parse or cannot be trusted."""
    try:
        envelope = parse_envelope(body)
    except ParseError:
        return None
    return None if event_origin_problem(subject, envelope, root) else envelope


async def last_events(js: JetStreamContext, stream: str, subjects: list[str]) -> list[tuple[int, Envelope]]:
    """The last trusted event on each of ``subjects`` (those that have one), in stream order.

    Enough to know where a run stands without reading its whole log: its start, its last end, its last retry.
    The subjects are asked all at once: one round trip before a guarded command runs (a rollback), not one each."""
    async def last(subject: str) -> tuple[int, Envelope] | None:
        try:
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
        envelope = trusted_event(subject, msg.data or b"", subject.split(".", 1)[0])
        return None if envelope is None else (msg.seq or 0, envelope)

    found = [item for item in await asyncio.gather(*(last(subject) for subject in subjects)) if item is not None]
    return sorted(found, key=lambda item: item[0])
