"""shared/event_log.py's reader on a real nats-server: each read uses a pull consumer it names after its user, and a
read goes on, every event once and in order, when that consumer is deleted or another client takes one of its
messages (issue 12 #4: readers no longer use the unnamed create subject, so they handle a lost consumer themselves).
"""

from __future__ import annotations

import json
from contextlib import aclosing

import nats
import pytest

from golive.shared import event_log
from golive.shared.bus import ensure_streams
from golive.shared.envelope import new_envelope
from golive.shared.event_log import read_events
from golive.shared.events import PhaseStarted

RUN = "run-reader"


async def publish_phases(settings, js, first: int, count: int) -> None:
    """``count`` phase events of RUN, numbered from ``first``, as the coordinator publishes them."""
    for i in range(first, first + count):
        envelope = new_envelope(PhaseStarted(phase="migrate", step=f"step-{i}"), id=f"{RUN}/{i}",
                                source="/golive/coordinator", runid=RUN,
                                subject=settings.subjects.event(RUN, "coordinator", "phase_started"))
        await js.publish(envelope.subject, envelope.to_json(), headers={"Nats-Msg-Id": envelope.id})


async def readers(js, stream: str) -> list[str]:
    """The names of the consumers on ``stream`` (only this test's readers use its stream)."""
    return [info.name for info in await js.consumers_info(stream)]


async def delete_readers(js, stream: str) -> None:
    """Delete every consumer on ``stream``: there is at least the reader's own, or the test would test nothing."""
    names = await readers(js, stream)
    assert names, f"no consumer on {stream} to delete"
    for name in names:
        assert await js.delete_consumer(stream, name)


@pytest.fixture
async def bus(settings):
    await ensure_streams(settings)
    nc = await nats.connect(settings.resolved_nats_url(), inbox_prefix="_INBOX_alice")
    yield nc.jetstream()
    await nc.close()


async def test_a_read_names_its_consumer_after_its_user_and_never_a_durable_name(settings, bus):
    await publish_phases(settings, bus, 0, 2)
    async with aclosing(read_events(bus, settings.subjects.events_of_run(RUN))) as feed:
        await anext(feed)
        names = await readers(bus, settings.subjects.event_stream)
    assert len(names) == 1 and names[0].startswith("alice-read-"), names
    assert event_log.reader_name("_INBOX.abc").startswith("read-")
    assert event_log.reader_name("_INBOX_blue.team.abc").startswith("blue_team-read-")


@pytest.mark.parametrize("follow", [False, True])
async def test_a_read_goes_on_from_where_it_was_when_its_consumer_is_deleted(settings, bus, monkeypatch, follow):
    monkeypatch.setattr(event_log, "BATCH", 2)  # several pulls for five events, so one comes after the deletion
    await publish_phases(settings, bus, 0, 5)
    steps = []
    async with aclosing(read_events(bus, settings.subjects.events_of_run(RUN), follow=follow)) as feed:
        async for _, envelope in feed:
            steps.append(envelope.data.step)
            if len(steps) == 1:  # as an admin, or the server when the reader stayed idle too long, would
                await delete_readers(bus, settings.subjects.event_stream)
            if follow and len(steps) == 5:  # caught up and waiting: its consumer goes, then a new event comes
                await delete_readers(bus, settings.subjects.event_stream)
                await publish_phases(settings, bus, 5, 1)
            if len(steps) == 5 + follow:
                break
    assert steps == [f"step-{i}" for i in range(5 + follow)]


async def test_a_read_goes_on_from_the_message_another_client_took_from_its_consumer(settings, bus, monkeypatch):
    monkeypatch.setattr(event_log, "BATCH", 2)
    await publish_phases(settings, bus, 0, 5)
    steps = []
    async with aclosing(read_events(bus, settings.subjects.events_of_run(RUN))) as feed:
        async for _, envelope in feed:
            steps.append(envelope.data.step)
            if len(steps) == 1:  # someone pulls the third event from the reader's consumer (its name known)
                [name] = await readers(bus, settings.subjects.event_stream)
                inbox = await bus._nc.subscribe(bus._nc.new_inbox())
                await bus._nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{settings.subjects.event_stream}.{name}",
                                      json.dumps({"batch": 1, "no_wait": True}).encode(), reply=inbox.subject)
                taken = await inbox.next_msg(timeout=10)
                assert json.loads(taken.data)["data"]["step"] == "step-2"
    assert steps == [f"step-{i}" for i in range(5)]
