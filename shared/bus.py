"""The bus: how every golive service talks to NATS JetStream.

- ``ensure_streams`` creates the command, event and dead-letter streams when missing and never changes an existing
  one (it says what differs); ``connect_options`` connects with the user's own inbox prefix.
- Each durable consumer a service reads is recreated if someone deletes it (shared/durables.py).
- ``Bus.publish`` sends an envelope with ``Nats-Msg-Id`` = envelope id, so a re-send is deduplicated.
- ``Bus.on_command`` registers a handler on the service's durable pull consumer, which every instance of
  the service shares (start more processes to scale out). The wrapper gives each handler the same
  contract: explicit ack after the work is done and its result events are published; in-progress acks
  while long work runs; a crash is retried with backoff up to ``max_deliver`` times and then reported
  as CommandFailed; a body that does not parse goes to ``<root>.dlq.<service>`` and the service keeps
  running; on shutdown, long work is handed back (nak) so another instance takes it.
- ``Bus.consume_events`` reads a durable event consumer in batches and handles each event in stream order, one at
  a time (shared/ordered_consumer.py), with the same contract: ack after the handler, bounded retries, dead letters.
- Trust: an event counts only when its subject, envelope and type agree on who sent it, and a command only
  when its type names its subject (shared/provenance.py); anything else is dead-lettered with the reason.
  With ``guard_runs``, work for a run that is unknown or has ended is refused (shared/run_guard.py).
- Tracing, when on (shared/tracing.py): a command is sent in a span and handled in a child of it, an event is handled
  in a span linked to the one that published it; the W3C ``traceparent`` travels in the headers (nats_headers).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import nats
from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsBroker, PullSub
from faststream.nats.message import NatsMessage
from faststream.nats.security import NatsCredentials, NatsSecurity, NatsUserPassword
from faststream.specification import AsyncAPI
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from opentelemetry.trace import Span

from golive.shared import tracing
from golive.shared.backoff import Backoff
from golive.shared.bus_metrics import SubjectPatternPrometheusMiddleware
from golive.shared.commands import command_envelope
from golive.shared.durables import Durable, keep_durables
from golive.shared.envelope import Envelope, Message, ParseError, nats_headers, new_envelope, parse_envelope
from golive.shared.event_log import last_events
from golive.shared.events import CommandFailed, DeadLettered, FailureClass
from golive.shared.ordered_consumer import OrderedConsumer
from golive.shared.provenance import command_origin_problem, event_origin_problem, source_of
from golive.shared.run_guard import lifecycle_subjects, work_refusal
from golive.shared.secrets import redact
from golive.shared.settings import Settings
from golive.shared.settings import connect_options as connect_options  # here too, where services have always found it
from golive.shared.telemetry import ServiceMetrics, library_logger

EVENT_ACK_WAIT_S = 5.0  # events: handled in milliseconds, so a crashed instance's message comes back soon
MAX_BODY_IN_DEAD_LETTER = 4096


# exact: the delay is a function of the delivery count alone, the same on every instance that handles it
REDELIVERY = Backoff(base_s=0.5, cap_s=15.0)


def redelivery_delay(attempt: int) -> float:
    """Backoff before redelivery number ``attempt`` + 1: 0.5 s, 1 s, 2 s, ... capped at 15 s."""
    return REDELIVERY.delay(attempt)


# what golive sets on its streams (shared/subjects.py): an existing stream that differs on one of them is reported
STREAM_SETTINGS = ("subjects", "retention", "storage", "discard", "max_age", "duplicate_window", "num_replicas")


def settings_differences(expected: Any, actual: Any, names: Sequence[str]) -> list[str]:
    """``name: golive sets X, the server has Y`` for each setting in ``names`` on which two configs differ (a setting
    golive leaves unset is the server's to choose)."""
    def shown(value: Any) -> Any:
        value = getattr(value, "value", value)  # enums as their wire name
        return sorted(value) if isinstance(value, list) else value

    return [f"{name}: golive sets {shown(getattr(expected, name))!r}, the server has {shown(getattr(actual, name))!r}"
            for name in names
            if getattr(expected, name) is not None and shown(getattr(expected, name)) != shown(getattr(actual, name))]


async def ensure_streams(settings: Settings, replicas: int | None = None, log: Any = None) -> dict[str, list[str]]:
    """Create each stream that is missing, with ``replicas`` (default: GOLIVE_STREAM_REPLICAS); never change one that
    exists. Its limits and replicas are the operator's (an update would put back a max_age or max_bytes set on
    purpose, and services may not update streams at all under deploy/nats.conf): what differs from golive's settings
    is returned by stream, and logged with ``log``."""
    replicas = settings.stream_replicas if replicas is None else replicas
    nc = await nats.connect(**await connect_options(settings), connect_timeout=5, max_reconnect_attempts=3)
    differences: dict[str, list[str]] = {}
    try:
        js = nc.jetstream()
        for config in settings.subjects.stream_configs(replicas=replicas):
            info = await until_answered(functools.partial(_created_or_found, js, config))
            if info is None:
                continue
            if found := settings_differences(config, info.config, STREAM_SETTINGS):
                differences[str(config.name)] = found
                if log is not None:
                    log.warning("stream.settings_differ", stream=config.name, differences=found,
                                action="kept the server's settings (change them with the nats CLI if intended)")
    finally:
        await nc.drain()
    return differences


async def _created_or_found(js: Any, config: Any) -> Any:
    """None when the stream was missing and is now created, else the existing stream's info."""
    try:
        return await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return None
        except BadRequestError:  # created meanwhile by another process, maybe otherwise: compare it
            return await js.stream_info(config.name)


# what a JetStream API request meets on a cluster while a leader is being elected (the cluster starting, a stream
# just created by another process, a node gone): nobody answers for a few seconds, then the new leader does
UNANSWERED = (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)
ELECTION_WAIT_S = 30.0


async def until_answered(request: Callable[[], Awaitable[Any]], wait_s: float = ELECTION_WAIT_S) -> Any:
    """``request()``'s answer, asked again while JetStream does not answer (UNANSWERED), no new try starting later
    than ``wait_s`` after the first; the last error after that. Only for requests that may be repeated (reads,
    creations that tolerate existing)."""
    election = Backoff(base_s=0.1, cap_s=1.0, within_s=wait_s)  # soon after a quick election, then once a second
    async for attempt in election.retrying(UNANSWERED):
        with attempt:
            return await request()
    raise AssertionError("unreachable: the last try returns or raises")


class CommandError(Exception):
    """A handler's way to say the command cannot be done. ``failure``: invalid (bad input, do not
    retry), transient (a dependency failed; the coordinator may retry) or fatal."""

    def __init__(self, reason: str, failure: FailureClass = "fatal") -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


class UnknownRun(Exception):
    """Raised by a handler whose command names a run the event log does not know: there is no run to record a
    refusal in, so the command is dead-lettered with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HandBack(Exception):
    """Raised by long work that stopped because the service is shutting down: redeliver it elsewhere."""


class Defer(Exception):
    """Raised by an event handler that must not handle this event here (another instance owns its run):
    redeliver it after ``delay_s``, without counting it as a failure."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"deferred {delay_s:.1f} s")
        self.delay_s = delay_s


@dataclass
class Work:
    """What a handler gets besides the payload: the envelope and the shutdown signal."""

    envelope: Envelope
    stopping: asyncio.Event
    attempt: int = 1


Handler = Callable[[Any, Work], Awaitable[Sequence[Message] | Message | None]]


@dataclass
class Bus:
    """One service's bus: a FastStream broker plus golive's delivery contract."""

    settings: Settings
    service: str
    metrics: ServiceMetrics
    log: Any
    max_workers: int = 1
    # refuse work whose run is unknown or has ended (shared/run_guard.py): services that change production
    guard_runs: bool = False
    broker: NatsBroker = field(init=False)
    stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _command_handlers: dict[type[Message], Handler] = field(init=False, default_factory=dict)
    _consuming: bool = field(init=False, default=False)
    _command_subscriber: Any = field(init=False, default=None)
    _js: JetStreamContext | None = field(init=False, default=None)  # made once: publish_all's async-ack inbox comes with it
    _durables: list[Durable] = field(init=False, default_factory=list)
    _handling: set[str] = field(init=False, default_factory=set)  # ids of the commands this instance works on now
    _keeping_durables: asyncio.Task[None] | None = field(init=False, default=None)
    _event_feeds: list[OrderedConsumer] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.subjects = s.subjects
        self.source = source_of(self.service)
        self.broker = NatsBroker(
            s.servers(),  # every node of a cluster: the connection moves to another when one goes away
            security=_security(s),
            graceful_timeout=s.graceful_timeout_s,
            # labelled by subject pattern: a subject holds the run id, a label must not (shared/bus_metrics.py)
            middlewares=[SubjectPatternPrometheusMiddleware(registry=self.metrics.registry, subjects=s.subjects,
                                                            app_name=self.service)],
            max_reconnect_attempts=-1,
            inbox_prefix=s.inbox_prefix(),  # replies only this user may read (deploy/nats.conf)
            log_level=10,  # FastStream's per-message lines at DEBUG; golive logs its own structured lines
            logger=library_logger("faststream.nats"),  # JSON through the root handler, not FastStream's colours
        )
        # FastStream gives pull subscriptions nats-py's "_INBOX." unless told: they must use this user's prefix too
        self._pull_inbox = f"{s.inbox_prefix()}.".encode()

    # --- app ------------------------------------------------------------------------------------

    def app(self, title: str, after_startup: Sequence[Callable[[], Awaitable[None]]] = (),
            on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()) -> FastStream:
        """A FastStream app whose startup creates the streams and whose shutdown hands back long work."""
        return FastStream(
            self.broker,
            logger=library_logger("faststream"),
            specification=AsyncAPI(title=title, version="1"),
            on_startup=[self._startup],
            after_startup=[self._start_event_feeds, self._keep_durables, *after_startup],
            on_shutdown=[self._shutdown, *on_shutdown],
        )

    async def start(self) -> None:
        """Start consuming without a FastStream app (embedding: tests, benchmarks)."""
        self.start_consuming_commands()
        await self._startup()
        await self.broker.start()
        await self._start_event_feeds()
        await self._keep_durables()

    async def stop(self) -> None:
        """Stop consuming: long work sees ``stopping`` and hands itself back; then the connection drains."""
        await self._shutdown()
        await self.broker.stop()

    async def _startup(self) -> None:
        await ensure_streams(self.settings, log=self.log)
        self.log.info("bus.ready", nats=self.settings.shown_nats_url(), root=self.subjects.root)

    async def _start_event_feeds(self) -> None:
        js = self.broker.connection.jetstream()
        for feed in self._event_feeds:
            if not feed.running:
                await feed.start(js)

    async def _keep_durables(self) -> None:
        """Recreate this service's durable consumers when someone deletes one (shared/durables.py)."""
        if self._durables and self._keeping_durables is None:
            self._keeping_durables = asyncio.create_task(
                keep_durables(self.jetstream(), self._durables, self.log))

    def _durable(self, stream: str, name: str, filter_subject: str, config: ConsumerConfig,
                 deliver_policy: DeliverPolicy = DeliverPolicy.ALL) -> None:
        # both are set on every consumer config golive builds; the defaults only satisfy the type
        self._durables.append(Durable(stream, name, filter_subject, config.ack_wait or 30.0, config.max_deliver or -1,
                                      deliver_policy))

    async def _shutdown(self) -> None:
        if self._keeping_durables is not None:
            self._keeping_durables.cancel()
            self._keeping_durables = None
        self.log.info("service.stopping", graceful_timeout_s=self.settings.graceful_timeout_s)
        await self._stop_fetching_commands()
        self.stopping.set()
        # the event in hand is finished (up to the graceful timeout); those fetched behind it are handed back
        await asyncio.gather(*(feed.stop(self.settings.graceful_timeout_s) for feed in self._event_feeds))

    async def _stop_fetching_commands(self) -> None:
        """Leave the command consumer before handlers hear ``stopping``, so work they hand back goes to
        another instance. FastStream unsubscribes only after the handlers finish: until then this instance's
        pull request (alive up to the PullSub timeout) would get the handed-back command straight back, and
        a subscriber that is stopping leaves it unacked until ack_wait."""
        subscriber = self._command_subscriber
        if subscriber is None or subscriber.subscription is None:
            return
        subscriber.running = False  # FastStream's flag: its pull loop ends after the fetch in progress
        # taken from FastStream too, whose own stop would otherwise unsubscribe it a second time (an error)
        pull, subscriber.subscription = subscriber.subscription, None
        try:
            # the server delivers nothing more to a pull request whose inbox has no subscriber; the UNSUB
            # goes out on the connection ahead of any hand-back's NAK, so the server has seen it first
            await pull.unsubscribe()
        except nats.errors.Error as exc:  # a closed or reconnecting connection: no pull request to withdraw
            self.log.warning("bus.unsubscribe_failed", error=redact(f"{type(exc).__name__}: {exc}"))

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, envelope: Envelope, subject: str, stream: str) -> None:
        """Publish to JetStream and wait for its PubAck; ``Nats-Msg-Id`` deduplicates re-sends. Straight on the
        connection, as publish_all and the CLI do: every golive message carries the same headers (nats_headers), none
        of FastStream's own. With tracing on, a command is sent in a span of its own (shared/tracing.py)."""
        with self._sending(envelope, subject, stream) as span:
            await self.jetstream().publish(subject, envelope.to_json(), stream=stream,
                                           headers=nats_headers(envelope, span), timeout=self.settings.publish_timeout_s)

    def _sending(self, envelope: Envelope, subject: str, stream: str) -> AbstractContextManager[Span | None]:
        """The send span of a command (None for an event, or with tracing off: it carries the current span)."""
        if stream != self.subjects.command_stream:
            return nullcontext()
        return tracing.sending(subject, envelope.id, envelope.runid, envelope.type)

    async def publish_all(self, messages: Sequence[tuple[Envelope, str]]) -> None:
        """Publish ``(envelope, stream)`` pairs in this order, then wait for all their PubAcks together: one
        round trip for a decision's events and commands instead of one each. The server stores them in the
        order sent (one connection, written in sequence); any refused publish raises after all are sent."""
        js = self.jetstream()
        acks = []
        with ExitStack() as spans:  # each command's send span ends once every PubAck is in
            for envelope, stream in messages:
                span = spans.enter_context(self._sending(envelope, envelope.subject or "", stream))
                acks.append(await js.publish_async(envelope.subject or "", envelope.to_json(), stream=stream,
                                                   headers=nats_headers(envelope, span)))
            if acks:
                await asyncio.wait_for(asyncio.gather(*acks), self.settings.publish_timeout_s)
        for envelope, stream in messages:
            if stream == self.subjects.event_stream:
                self.metrics.events_published.labels(self.service, envelope.type).inc()

    def event_envelope(self, data: Message, *, run_id: str, event_id: str, cause: Envelope | None = None,
                       correlationid: str | None = None) -> Envelope:
        """An event of this service for ``run_id`` (correlation: given, else that of ``cause``), unsent."""
        return new_envelope(
            data,
            id=event_id,
            source=self.source,
            runid=run_id,
            subject=self.subjects.event(run_id, self.service, data.short_name()),
            correlationid=correlationid or correlation_of(cause),
            causationid=cause.id if cause else None,
        )

    def command_envelope(self, data: Message, *, run_id: str, command_id: str,
                         cause: Envelope | None = None) -> Envelope:
        """A command from this service to the one its type names, for ``run_id``, unsent."""
        return command_envelope(data, id=command_id, source=self.source, run_id=run_id, subjects=self.subjects,
                                causationid=cause.id if cause else None)

    async def publish_core(self, envelope: Envelope, subject: str) -> None:
        """Publish on core NATS, outside any stream: no PubAck, no redelivery (signals only a live instance
        cares about)."""
        await self.broker.connection.publish(subject, envelope.to_json(), headers=nats_headers(envelope))

    def jetstream(self) -> JetStreamContext:
        """The JetStream context of this service's connection (for its KV buckets and log reads), once started."""
        if self._js is None:
            self._js = self.broker.connection.jetstream()
        return self._js

    async def emit(self, data: Message, *, run_id: str, event_id: str, cause: Envelope | None = None,
                   correlationid: str | None = None) -> Envelope:
        """Publish an event of this service for ``run_id`` (correlation: given, else that of ``cause``)."""
        envelope = self.event_envelope(data, run_id=run_id, event_id=event_id, cause=cause, correlationid=correlationid)
        await self.publish(envelope, envelope.subject or "", self.subjects.event_stream)
        self.metrics.events_published.labels(self.service, data.TYPE).inc()
        return envelope

    # --- consuming ------------------------------------------------------------------------------

    def on_command(self, model: type[Message], handler: Handler) -> None:
        """Handle commands of type ``model`` sent to this service."""
        self._command_handlers[model] = handler

    def start_consuming_commands(self) -> None:
        """Register the durable pull consumer shared by every instance of this service (once)."""
        if not self._command_handlers or self._consuming:
            return
        self._consuming = True
        # long work keeps its message with in-progress acks; a crashed instance's comes back after ack_wait
        config = ConsumerConfig(ack_wait=self.settings.command_ack_wait_s, max_deliver=self.settings.max_deliver + 1)
        self._durable(self.subjects.command_stream, self.service, self.subjects.commands_of(self.service), config)
        self._command_subscriber = self.broker.subscriber(
            self.subjects.commands_of(self.service),
            stream=JStream(self.subjects.command_stream, declare=False),
            durable=f"{self.service}",
            pull_sub=PullSub(batch_size=1, timeout=2.0),
            inbox_prefix=self._pull_inbox,
            config=config,
            ack_policy=AckPolicy.MANUAL,
            decoder=_the_message_itself,
            max_workers=self.max_workers,
            title=f"{self.service} commands",
            description=", ".join(m.TYPE for m in self._command_handlers),
        )
        self._command_subscriber(self._on_command)

    def on_signal(self, subject: str, handler: Callable[[NatsMessage], Awaitable[None]], title: str) -> None:
        """Handle core NATS messages on ``subject`` (every instance gets each one; nothing is stored or acked)."""
        self.broker.subscriber(subject, title=title)(handler)

    def consume_events(self, subject: str, durable: str, handler: Callable[[Envelope, int], Awaitable[None]],
                       max_deliver: int | None = None) -> None:
        """Durable pull consumer on the event stream (for services that react to events). ``max_deliver``:
        -1 for handlers that may Defer an event any number of times (each deferral is a delivery)."""

        async def on_event(raw: Msg) -> None:
            msg = NatsMessage(raw, raw.data)  # FastStream's wrapper: the same ack guards as the command path
            envelope = await self._trusted(msg, event_origin_problem)
            if envelope is None:
                return
            keepalive = asyncio.create_task(_keep_alive(msg, EVENT_ACK_WAIT_S / 3))
            # a span of the run's trace, linked to the one that published the event (shared/tracing.py)
            with tracing.handling(msg.raw_message.subject, envelope.id, envelope.runid, envelope.type,
                                  msg.raw_message.headers, link=True, consumer=durable):
                try:
                    await handler(envelope, msg.raw_message.metadata.sequence.stream)
                except Defer as exc:
                    tracing.mark_deferred(exc.delay_s)  # another instance owns its run: not handled here
                    await msg.nack(delay=exc.delay_s)
                    return
                except Exception as exc:  # a bug or a broken dependency: retry, bounded
                    await self._retry_or_give_up(msg, envelope, exc)
                    return
                finally:
                    keepalive.cancel()
            await msg.ack()

        config = ConsumerConfig(ack_wait=EVENT_ACK_WAIT_S, max_deliver=max_deliver or self.settings.max_deliver + 1,
                                durable_name=durable, deliver_policy=DeliverPolicy.NEW)
        self._durable(self.subjects.event_stream, durable, subject, config, DeliverPolicy.NEW)
        # read in batches, handled in stream order (shared/ordered_consumer.py): a decision is never made on an event
        # before the ones ahead of it, and a burst of events costs one pull, not one round trip each
        self._event_feeds.append(OrderedConsumer(
            stream=self.subjects.event_stream, durable=durable, subject=subject, config=config, handle=on_event,
            log=self.log, inbox_prefix=self._pull_inbox, keep_alive_s=EVENT_ACK_WAIT_S / 3))

    async def _trusted(self, msg: NatsMessage, origin_problem: Callable[[str, Envelope, str], str | None]
                       ) -> Envelope | None:
        """The message's envelope; None once it is dead-lettered: unreadable, or not from the service its subject
        names (``origin_problem``, shared/provenance.py): a forged message is never handled."""
        try:
            envelope = parse_envelope(msg.raw_message.data)
        except ParseError as exc:
            await self._dead_letter(msg, str(exc))
            return None
        if problem := origin_problem(msg.raw_message.subject, envelope, self.subjects.root):
            await self._dead_letter(msg, f"not trusted: {problem}")
            return None
        return envelope

    async def _on_command(self, msg: Any) -> None:
        # ``msg``: FastStream's NatsMessage, handed over as the body (_the_message_itself). Annotated as FastStream's
        # context instead, it would be resolved in a worker thread: a thread hop before every command.
        envelope = await self._trusted(msg, command_origin_problem)
        if envelope is None:
            return
        handler = self._command_handlers.get(type(envelope.data))
        if handler is None:
            await self._dead_letter(msg, f"{self.service} does not handle {envelope.type}")
            return

        attempt = _delivery_count(msg)
        log = self.log.bind(run_id=envelope.runid, command_id=envelope.id, type=envelope.type, attempt=attempt)
        if envelope.id in self._handling:
            # redelivered while this instance still works on it (its event loop missed the in-progress acks for a
            # whole ack_wait): one copy of the work, not two; the one running acks it
            log.warning("command.redelivered_while_handled")
            await msg.in_progress()
            return
        log.info("command.received")
        self._handling.add(envelope.id)
        try:
            # a child of the span that sent it (its traceparent), else of the run's root (shared/tracing.py)
            with tracing.handling(msg.raw_message.subject, envelope.id, envelope.runid, envelope.type,
                                  msg.raw_message.headers, consumer=self.service):
                await self._handle_command(msg, envelope, handler, attempt, log)
        finally:
            self._handling.discard(envelope.id)

    async def _handle_command(self, msg: NatsMessage, envelope: Envelope, handler: Handler, attempt: int,
                              log: Any) -> None:
        # five in-progress acks per ack_wait: a busy event loop can miss a few before the command is redelivered
        keepalive = asyncio.create_task(_keep_alive(msg, self.settings.command_ack_wait_s / 5))
        started = time.perf_counter()
        try:
            await self._check_run(envelope)
            result = await handler(envelope.data, Work(envelope, self.stopping, attempt))
        except UnknownRun as exc:
            await self._dead_letter(msg, exc.reason)
            return
        except HandBack:
            log.info("command.handed_back")
            await msg.nack(delay=0)
            self.metrics.commands.labels(self.service, envelope.type, "handed_back").inc()
            return
        except CommandError as exc:
            tracing.mark_failed(redact(exc.reason))
            await self._fail(envelope, exc.reason, exc.failure, attempt)
            await msg.ack()
            log.warning("command.failed", reason=redact(exc.reason), failure=exc.failure)
            return
        except Exception as exc:
            await self._retry_or_give_up(msg, envelope, exc)
            return
        finally:
            keepalive.cancel()
            self.metrics.command_seconds.labels(self.service, envelope.type).observe(time.perf_counter() - started)

        for i, data in enumerate(_as_list(result)):
            suffix = f"/{i}" if i else ""
            await self.emit(data, run_id=envelope.runid, event_id=f"{envelope.id}/{data.short_name()}{suffix}", cause=envelope)
        await msg.ack()
        self.metrics.commands.labels(self.service, envelope.type, "done").inc()
        log.info("command.done", seconds=round(time.perf_counter() - started, 3))

    async def _check_run(self, envelope: Envelope) -> None:
        """With ``guard_runs``: UnknownRun, or CommandError (invalid), when the command's run does not take work
        now. The run's lifecycle is read from the event log; a failed read is retried like a failed handler."""
        if not self.guard_runs:
            return
        events = await last_events(self.jetstream(), self.subjects.event_stream,
                                   lifecycle_subjects(self.subjects, envelope.runid))
        refusal = work_refusal(envelope.type, envelope.runid, [e for _seq, e in events])
        if refusal is None:
            return
        if not refusal.run_known:
            raise UnknownRun(refusal.reason)
        raise CommandError(refusal.reason, "invalid")

    async def _retry_or_give_up(self, msg: NatsMessage, envelope: Envelope, exc: Exception) -> None:
        attempt = _delivery_count(msg)
        reason = redact(f"{type(exc).__name__}: {exc}")
        tracing.mark_failed(reason)
        log = self.log.bind(run_id=envelope.runid, message_id=envelope.id, type=envelope.type, attempt=attempt)
        if attempt < self.settings.max_deliver:
            delay = redelivery_delay(attempt)
            log.warning("message.retrying", reason=reason, delay_s=delay)
            await msg.nack(delay=delay)
            self.metrics.commands.labels(self.service, envelope.type, "retried").inc()
            return
        log.error("message.gave_up", reason=reason)
        if envelope.type.startswith("golive.cmd."):
            await self._fail(envelope, f"gave up after {attempt} attempts: {reason}", "transient", attempt)
        else:
            await self._dead_letter(msg, f"gave up after {attempt} attempts: {reason}")
            return
        await msg.ack()
        self.metrics.commands.labels(self.service, envelope.type, "gave_up").inc()

    async def _fail(self, envelope: Envelope, reason: str, failure: FailureClass, attempt: int) -> None:
        failed = CommandFailed(
            service=self.service, command_type=envelope.type, reason=redact(reason), failure=failure, attempts=attempt
        )
        await self.emit(failed, run_id=envelope.runid, event_id=f"{envelope.id}/command_failed", cause=envelope)
        self.metrics.commands.labels(self.service, envelope.type, "failed").inc()

    async def _dead_letter(self, msg: NatsMessage, error: str) -> None:
        """Keep the unparseable message with its error on the dead-letter subject, then drop it."""
        raw = msg.raw_message
        body = raw.data or b""
        try:
            text = body[:MAX_BODY_IN_DEAD_LETTER].decode()
        except UnicodeDecodeError:
            text = "base64:" + base64.b64encode(body[:MAX_BODY_IN_DEAD_LETTER]).decode()
        headers = {k: v for k, v in (raw.headers or {}).items() if k.lower() not in {"authorization"}}
        seq = raw.metadata.sequence.stream if raw.metadata else 0
        letter = DeadLettered(
            service=self.service, subject=raw.subject, error=redact(error), body=redact(text), headers=headers
        )
        envelope = new_envelope(
            letter, id=f"dlq/{self.service}/{raw.subject}/{seq}", source=self.source, runid="unknown",
            subject=self.subjects.dead_letter(self.service),
        )
        await self.publish(envelope, self.subjects.dead_letter(self.service), self.subjects.dead_letter_stream)
        self.metrics.dead_letters.labels(self.service).inc()
        self.log.warning("message.dead_lettered", subject=raw.subject, error=redact(error))
        await msg.reject()


def correlation_of(cause: Envelope | None) -> str | None:
    """The command a message ultimately answers: the cause itself if it is a command, else its correlation."""
    if cause is None:
        return None
    return cause.id if cause.type.startswith("golive.cmd.") else cause.correlationid


def _security(s: Settings) -> NatsSecurity | None:
    if s.nats_creds_file:
        return NatsCredentials.from_file(str(s.nats_creds_file))
    if s.nats_user:
        return NatsUserPassword(s.nats_user, s.nats_password.get_secret_value() if s.nats_password else "")
    return None


async def _the_message_itself(msg: NatsMessage) -> NatsMessage:
    """FastStream decoder: the handler's body is the message, acks and metadata included."""
    return msg


def _delivery_count(msg: NatsMessage) -> int:
    metadata = msg.raw_message.metadata
    return metadata.num_delivered if metadata else 1


def _as_list(result: Sequence[Message] | Message | None) -> list[Message]:
    if result is None:
        return []
    if isinstance(result, Message):
        return [result]
    return list(result)


async def _keep_alive(msg: NatsMessage, every_s: float) -> None:
    """Tell JetStream the work goes on, so ack_wait does not redeliver a long build or probe."""
    while True:
        await asyncio.sleep(every_s)
        await msg.in_progress()
