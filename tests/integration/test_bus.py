"""The bus contract against a real nats-server: dedupe, explicit ack, bounded redelivery, failure events,
dead letters, hand-back on shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import nats
import pytest

import golive.shared.bus as bus_module
from golive.shared.bus import Bus, CommandError, HandBack, Work
from golive.shared.commands import ProviderSpec, ShiftTraffic
from golive.shared.envelope import Envelope, new_envelope, parse_envelope
from golive.shared.events import CommandFailed, DeadLettered, TrafficShifted
from golive.shared.provenance import source_of
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging


def shift(weight: int = 10) -> ShiftTraffic:
    return ShiftTraffic(provider=ProviderSpec(type="dry-run"), canary="dpl_new", weight=weight)


def shifted(cmd: ShiftTraffic) -> TrafficShifted:
    return TrafficShifted(provider="test", canary=cmd.canary, weight=cmd.weight, verified_weight=cmd.weight)


async def started_bus(settings: Settings, handler: Callable[[ShiftTraffic, Work], Awaitable]) -> Bus:
    bus = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"))
    bus.on_command(ShiftTraffic, handler)
    await bus.start()
    return bus


async def send(settings: Settings, data, command_id: str, run_id: str = "run-bus", raw: bytes | None = None) -> None:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        subject = settings.subjects.command("traffic", "shift")
        body = raw if raw is not None else new_envelope(data, id=command_id, source="/tests", runid=run_id).to_json()
        await nc.jetstream().publish(subject, body, stream=settings.subjects.command_stream,
                                     headers={"Nats-Msg-Id": command_id})
    finally:
        await nc.close()


async def next_events(settings: Settings, subject: str, count: int, timeout_s: float = 15.0) -> list[Envelope]:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        return [parse_envelope((await sub.next_msg(timeout=timeout_s)).data) for _ in range(count)]
    finally:
        await nc.close()


async def test_same_command_sent_twice_is_handled_once(settings):
    calls = []

    async def handler(cmd: ShiftTraffic, work: Work):
        calls.append(work.envelope.id)
        return shifted(cmd)

    bus = await started_bus(settings, handler)
    try:
        await send(settings, shift(), "cmd-1")
        await send(settings, shift(), "cmd-1")  # a re-send after a timeout: same Nats-Msg-Id
        [answer] = await next_events(settings, settings.subjects.events_of_run("run-bus"), 1)
        await asyncio.sleep(1.0)
    finally:
        await bus.stop()
    assert calls == ["cmd-1"]
    assert isinstance(answer.data, TrafficShifted)
    assert answer.correlationid == "cmd-1" and answer.causationid == "cmd-1"


async def test_crashing_handler_is_retried_with_bounds_then_reported_as_command_failed(settings):
    settings = settings.model_copy(update={"max_deliver": 3})
    attempts = []

    async def handler(cmd: ShiftTraffic, work: Work):
        attempts.append(work.attempt)
        raise ConnectionError("provider reset the connection")

    bus = await started_bus(settings, handler)
    try:
        await send(settings, shift(), "cmd-crash")
        [answer] = await next_events(settings, settings.subjects.events_of_run("run-bus"), 1, timeout_s=20)
    finally:
        await bus.stop()
    assert attempts == [1, 2, 3]
    assert isinstance(answer.data, CommandFailed)
    assert answer.data.failure == "transient" and answer.data.attempts == 3
    assert "provider reset the connection" in answer.data.reason


async def test_command_error_is_reported_once_without_retry(settings):
    attempts = []

    async def handler(cmd: ShiftTraffic, work: Work):
        attempts.append(work.attempt)
        raise CommandError("unknown deployment dpl_new", "invalid")

    bus = await started_bus(settings, handler)
    try:
        await send(settings, shift(), "cmd-invalid")
        [answer] = await next_events(settings, settings.subjects.events_of_run("run-bus"), 1)
        await asyncio.sleep(1.0)
    finally:
        await bus.stop()
    assert attempts == [1]
    assert answer.data.failure == "invalid" and answer.data.reason == "unknown deployment dpl_new"


@pytest.mark.parametrize("body, error", [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"type": "golive.cmd.nope.v1"}', "unknown message type"),
    (b'{"specversion": "1.0", "id": "x", "source": "/t", "type": "golive.cmd.traffic.shift.v1", "time": '
     b'"2026-11-23T02:00:00Z", "runid": "r", "data": {"weight": 500}}', "invalid golive.cmd.traffic.shift.v1"),
])
async def test_unparseable_message_is_dead_lettered_and_the_service_keeps_working(settings, body, error):
    handled = []

    async def handler(cmd: ShiftTraffic, work: Work):
        handled.append(cmd.weight)
        return shifted(cmd)

    bus = await started_bus(settings, handler)
    try:
        await send(settings, None, "garbage", raw=body)
        [letter] = await next_events(settings, settings.subjects.all_dead_letters, 1)
        await send(settings, shift(50), "cmd-after-garbage")
        [answer] = await next_events(settings, settings.subjects.events_of_run("run-bus"), 1)
    finally:
        await bus.stop()
    assert isinstance(letter.data, DeadLettered)
    assert error in letter.data.error
    assert letter.data.subject == settings.subjects.command("traffic", "shift")
    assert handled == [50] and isinstance(answer.data, TrafficShifted)


async def test_long_work_is_handed_back_on_shutdown_and_finished_by_another_instance(settings):
    first_started = asyncio.Event()

    async def slow_handler(cmd: ShiftTraffic, work: Work):
        first_started.set()
        await work.stopping.wait()  # a long probe that notices the shutdown
        raise HandBack()

    async def quick_handler(cmd: ShiftTraffic, work: Work):
        return shifted(cmd)

    first = await started_bus(settings, slow_handler)
    await send(settings, shift(), "cmd-long")
    await asyncio.wait_for(first_started.wait(), 15)
    await first.stop()
    second = await started_bus(settings, quick_handler)
    try:
        [answer] = await next_events(settings, settings.subjects.events_of_run("run-bus"), 1)
    finally:
        await second.stop()
    assert isinstance(answer.data, TrafficShifted) and answer.correlationid == "cmd-long"


async def test_a_command_held_by_a_dead_instance_goes_to_a_live_one_within_a_short_ack_wait(settings):
    """A crashed service's command (a rollback included) is not held for 30 s: the command consumer's ack_wait,
    read back from the server, is the default of a few seconds, and another instance takes the command then.
    Work in progress keeps its command meanwhile (in-progress acks), so a short ack_wait redelivers nothing alive."""
    settings = Settings(nats_url=settings.nats_url, subject_root=settings.subject_root)  # the defaults
    assert settings.command_ack_wait_s <= 5
    taken: list[tuple[str, int]] = []
    held = asyncio.Event()

    async def dies_holding_it(cmd: ShiftTraffic, work: Work):
        held.set()
        await asyncio.sleep(3600)  # the instance dies below with the command in hand

    async def takes_it(cmd: ShiftTraffic, work: Work):
        taken.append((work.envelope.id, work.attempt))
        return shifted(cmd)

    dying = await started_bus(settings, dies_holding_it)
    await send(settings, shift(), "cmd-held")
    await asyncio.wait_for(held.wait(), 15)
    info = await dying.broker.connection.jetstream().consumer_info(settings.subjects.command_stream, "traffic")
    assert info.config.ack_wait == settings.command_ack_wait_s
    await dying.broker.connection.close()  # gone without an ack or a hand-back: as kill -9 leaves it
    live = await started_bus(settings, takes_it)
    try:
        [answer] = await next_events(settings, settings.subjects.all_events, 1, timeout_s=30)
    finally:
        await live.stop()
    assert isinstance(answer.data, TrafficShifted) and taken == [("cmd-held", 2)]


async def test_a_command_redelivered_while_this_instance_still_works_on_it_is_not_run_twice(settings):
    """A stalled event loop misses its in-progress acks for a whole ack_wait and the command comes back to the same
    instance while its work goes on: one copy of the work runs, and the command is answered once."""
    settings = settings.model_copy(update={"command_ack_wait_s": 1.0})
    calls: list[int] = []

    async def stalls(cmd: ShiftTraffic, work: Work):
        calls.append(work.attempt)
        await asyncio.sleep(0.1)
        time.sleep(1.6)  # the event loop stalls past ack_wait: the server redelivers the command
        await asyncio.sleep(1.0)  # the redelivery arrives while this work is still in progress
        return shifted(cmd)

    bus = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"), max_workers=2)
    bus.on_command(ShiftTraffic, stalls)
    await bus.start()
    try:
        await send(settings, shift(), "cmd-stalled")
        [answer] = await next_events(settings, settings.subjects.all_events, 1, timeout_s=30)
        await asyncio.sleep(2.0)  # room for a second run of the work, had there been one
    finally:
        await bus.stop()
    assert isinstance(answer.data, TrafficShifted) and calls == [1]


async def publish_events(settings: Settings, run_id: str, weights: list[int]) -> None:
    """The traffic service's answers for ``run_id``, one per weight, stored in this order."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        subject = settings.subjects.event(run_id, "traffic", "traffic_shifted")
        for weight in weights:
            event = new_envelope(TrafficShifted(provider="test", canary="dpl_new", weight=weight, verified_weight=weight),
                                 id=f"{run_id}-{weight}", source=source_of("traffic"), runid=run_id, subject=subject)
            await js.publish(subject, event.to_json(), stream=settings.subjects.event_stream,
                             headers={"Nats-Msg-Id": event.id})
    finally:
        await nc.close()


async def test_events_are_handled_one_at_a_time_in_stream_order_and_kept_alive_while_they_wait(settings, monkeypatch):
    """Events come in batches, and each batch is handled in stream order, one event at a time: a decision is never
    made on an event before the ones ahead of it. Events fetched behind a slow one are kept alive meanwhile: another
    instance pulling from the same consumer gets none of them, though the slow one outlasts the consumer's ack_wait."""
    monkeypatch.setattr(bus_module, "EVENT_ACK_WAIT_S", 1.0)
    durable = "traffic-test-events"
    handled: list[tuple[int, int]] = []  # (weight, stream sequence)
    in_hand = 0
    first_in_hand, rest_published, slow_in_hand = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(envelope: Envelope, seq: int) -> None:
        nonlocal in_hand
        in_hand += 1
        assert in_hand == 1, "two events handled at once"
        weight = envelope.data.weight
        if weight == 1:  # the rest are stored meanwhile: the next pull takes them in one batch
            first_in_hand.set()
            await rest_published.wait()
        if weight == 2:  # slower than ack_wait, with 3..6 fetched behind it
            slow_in_hand.set()
            await asyncio.sleep(2.5)
        await asyncio.sleep(0.01)  # room for another event to start, were they handled concurrently
        handled.append((weight, seq))
        in_hand -= 1

    bus = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"))
    bus.consume_events(settings.subjects.all_events, durable, handler)
    await bus.start()
    other = await nats.connect(settings.resolved_nats_url())
    try:
        await publish_events(settings, "run-order", [1])
        await asyncio.wait_for(first_in_hand.wait(), 15)
        await publish_events(settings, "run-order", [2, 3, 4, 5, 6])
        rest_published.set()
        await asyncio.wait_for(slow_in_hand.wait(), 15)
        # another instance asks the same consumer while 3..6 wait behind the slow one, longer than ack_wait
        pull = await other.jetstream().pull_subscribe_bind(durable=durable, stream=settings.subjects.event_stream)
        try:
            taken_elsewhere = await pull.fetch(batch=10, timeout=2.0)
        except TimeoutError:  # nothing to take: the waiting events are kept alive
            taken_elsewhere = []
        await pull.unsubscribe()
        while len(handled) < 6:
            await asyncio.sleep(0.1)
    finally:
        await other.close()
        await bus.stop()
    assert taken_elsewhere == []
    assert [weight for weight, _seq in handled] == [1, 2, 3, 4, 5, 6]
    assert [seq for _weight, seq in handled] == sorted(seq for _weight, seq in handled)


async def test_events_waiting_behind_the_one_in_hand_are_handed_back_on_shutdown(settings, monkeypatch):
    """A stopping instance finishes the event in hand and hands back the events fetched behind it at once: another
    instance handles them now, not after the consumer's ack_wait."""
    monkeypatch.setattr(bus_module, "EVENT_ACK_WAIT_S", 60.0)  # far longer than this test waits
    durable = "traffic-test-handback"
    first_handled: list[int] = []
    second_handled: list[int] = []
    first_in_hand, rest_published, slow_in_hand, finish_slow = (asyncio.Event() for _ in range(4))

    async def first(envelope: Envelope, seq: int) -> None:
        weight = envelope.data.weight
        if weight == 1:  # the rest are stored meanwhile: the next pull takes them in one batch
            first_in_hand.set()
            await rest_published.wait()
        if weight == 2:  # in hand when the instance stops, with 3 and 4 fetched behind it
            slow_in_hand.set()
            await finish_slow.wait()
        first_handled.append(weight)

    async def second(envelope: Envelope, seq: int) -> None:
        second_handled.append(envelope.data.weight)

    stopping = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"))
    stopping.consume_events(settings.subjects.all_events, durable, first)
    await stopping.start()
    try:
        await publish_events(settings, "run-handback", [1])
        await asyncio.wait_for(first_in_hand.wait(), 15)
        await publish_events(settings, "run-handback", [2, 3, 4])
        rest_published.set()
        await asyncio.wait_for(slow_in_hand.wait(), 15)
        asyncio.get_running_loop().call_later(0.5, finish_slow.set)  # the event in hand finishes during the stop
    finally:
        await stopping.stop()
    taking_over = Bus(settings, "traffic", ServiceMetrics("traffic"), configure_logging("traffic", "WARNING"))
    taking_over.consume_events(settings.subjects.all_events, durable, second)
    await taking_over.start()
    try:
        await asyncio.wait_for(_until(lambda: len(second_handled) >= 2), 20)
    finally:
        await taking_over.stop()
    assert first_handled == [1, 2]
    assert second_handled == [3, 4]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.05)
