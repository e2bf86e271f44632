"""Reading the event stream as a log: a run's events in order, from the first.

Used by the coordinator to rebuild a run after a restart and by `golive events` to show one. Only events whose
subject, envelope and type agree on who sent them are read (shared/provenance.py): a forged event, dead-lettered
when it arrived, is never folded into a run on replay either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.envelope import Envelope, ParseError, parse_envelope
from shared.provenance import event_origin_problem


async def read_events(
    js: JetStreamContext, subject: str, *, from_seq: int | None = None, up_to_seq: int | None = None,
    follow: bool = False, patience_s: float = 10.0,
) -> AsyncIterator[tuple[int, Envelope]]:
    """Yield (stream sequence, envelope) for every event on ``subject`` from the first.

    Stops at the end of the stream (or at ``up_to_seq``); with ``follow`` it waits for new events until
    cancelled. Messages that do not parse, and events from a sender they do not belong to, are skipped here:
    the dead-letter path already kept them with the reason.
    """
    root = subject.split(".", 1)[0]
    if up_to_seq is not None and from_seq is not None and from_seq > up_to_seq:
        return
    start = (ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_seq)
             if from_seq else ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    sub = await js.subscribe(subject, ordered_consumer=True, config=start, idle_heartbeat=2.0)
    try:
        info = await sub.consumer_info()
        # A push consumer starts delivering at once: by now messages may sit in our buffer, counted as
        # delivered rather than pending. Only when nothing was either is the log empty.
        if not follow and info.num_pending == 0 and info.delivered.consumer_seq == 0:
            return
        while True:
            try:
                # Without follow, messages are known to be pending: a slow delivery is waited for, not taken
                # for the end of the log.
                msg = await sub.next_msg(timeout=patience_s if not follow else 3600)
            except (TimeoutError, asyncio.TimeoutError):
                if follow:
                    continue
                raise TimeoutError(f"events on {subject} stopped arriving before the end of the stream") from None
            seq = msg.metadata.sequence.stream
            if up_to_seq is not None and seq > up_to_seq:
                return
            if (envelope := trusted_event(msg.subject, msg.data, root)) is not None:
                yield seq, envelope
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()


def trusted_event(subject: str, body: bytes, root: str) -> Envelope | None:
    """The event ``body`` received on ``subject``, or None when it does not parse or cannot be trusted."""
    try:
        envelope = parse_envelope(body)
    except ParseError:
        return None
    return None if event_origin_problem(subject, envelope, root) else envelope


async def last_events(js: JetStreamContext, stream: str, subjects: list[str]) -> list[tuple[int, Envelope]]:
    """The last trusted event on each of ``subjects`` (those that have one), in stream order.

    Enough to know where a run stands without reading its whole log: its start, its last end, its last retry."""
    found = []
    for subject in subjects:
        try:
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            continue
        if (envelope := trusted_event(subject, msg.data or b"", subject.split(".", 1)[0])) is not None:
            found.append((msg.seq, envelope))
    return sorted(found, key=lambda item: item[0])
