"""Durable consumers come back and stream settings stay the operator's (issue 12 #4, issue 14 #8 and #11).

A deleted durable consumer used to freeze its service silently for good (deleting ``coordinator-events`` froze
every new run); a service start used to put back stream limits an operator had changed (max_age, max_bytes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType

from golive.shared.buckets import open_bucket
from golive.shared.bus import ensure_streams
from golive.shared.durables import Durable, check_durable
from golive.shared.telemetry import configure_logging
from tests.builders import skeleton_plan
from tests.harness import run_cli

log = configure_logging("tests", "WARNING")


@asynccontextmanager
async def streams_made(settings) -> AsyncIterator[JetStreamContext]:
    """The streams as every service's start makes them, and a JetStream client for the block."""
    await ensure_streams(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def recreations(log_text: str) -> list[str]:
    """The consumers a service's log says it created again."""
    structured = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]  # not FastStream's
    return [line["consumer"] for line in structured if line.get("event") == "consumer.recreated"]


def test_a_run_completes_after_the_durable_consumers_were_deleted_and_each_service_says_it_recreated_its_own(
        services, settings, process_env, webhook, tmp_path):
    subjects = settings.subjects
    deleted = [(subjects.event_stream, "coordinator-events"), (subjects.event_stream, "notifier-events"),
               (subjects.command_stream, "migrator")]

    async def delete_them() -> None:  # as someone with admin rights on the bus would (the plain test server)
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            for stream, name in deleted:
                assert await nc.jetstream().delete_consumer(stream, name)
        finally:
            await nc.close()

    asyncio.run(delete_them())
    result = run_cli("run", str(skeleton_plan(tmp_path)), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-consumers-deleted", env=process_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "run succeeded" in result.stdout
    assert any("SUCCESS" in m["text"] for m in webhook.wait_for(lambda r: any("SUCCESS" in m["text"] for m in r)))
    logs = {name: (tmp_path / "logs" / f"{name}.log").read_text() for name in ("coordinator", "notifier", "migrator")}
    assert "coordinator-events" in recreations(logs["coordinator"])
    assert "notifier-events" in recreations(logs["notifier"])
    assert "migrator" in recreations(logs["migrator"])


async def test_a_recreated_event_consumer_delivers_the_events_published_while_it_was_gone(settings):
    stream, subject = settings.subjects.event_stream, settings.subjects.all_events
    async with streams_made(settings) as js:
        await js.publish(settings.subjects.event("run-before", "coordinator", "x"), b"before")
        durable = Durable(stream, "watcher", subject, ack_wait_s=5.0, max_deliver=3, deliver_policy=DeliverPolicy.NEW)
        await js.add_consumer(stream, durable.recreation())
        assert not await check_durable(js, durable, log)  # it exists: its position is noted

        await js.delete_consumer(stream, "watcher")
        await js.publish(settings.subjects.event("run-gap", "coordinator", "x"), b"while gone")
        assert await check_durable(js, durable, log)

        pull = await js.pull_subscribe_bind("watcher", stream=stream)
        messages = await pull.fetch(5, timeout=5)
        assert [m.data for m in messages] == [b"while gone"]  # not the one from before it existed
        info = await js.consumer_info(stream, "watcher")
        assert info.config.durable_name == "watcher" and info.config.filter_subject == subject


async def test_a_work_queue_consumer_is_recreated_from_the_first_command_not_yet_done(settings):
    stream = settings.subjects.command_stream
    async with streams_made(settings) as js:
        durable = Durable(stream, "traffic", settings.subjects.commands_of("traffic"), ack_wait_s=5.0, max_deliver=3)
        await js.add_consumer(stream, durable.recreation())
        await js.publish(settings.subjects.command("traffic", "shift"), b"sent before the deletion")
        await js.delete_consumer(stream, "traffic")
        assert await check_durable(js, durable, log)
        assert not await check_durable(js, durable, log)  # once is enough: it is there again

        pull = await js.pull_subscribe_bind("traffic", stream=stream)
        assert [m.data for m in await pull.fetch(1, timeout=5)] == [b"sent before the deletion"]


async def test_a_service_start_keeps_the_stream_limits_an_operator_changed_and_names_what_differs(settings):
    async with streams_made(settings) as js:
        config = (await js.stream_info(settings.subjects.event_stream)).config
        config.max_age, config.max_bytes = 3 * 86400.0, 64 * 1024 * 1024  # the operator's choice, on purpose
        await js.update_stream(config)

        differences = await ensure_streams(settings)  # as every service and the CLI do at start

        kept = (await js.stream_info(settings.subjects.event_stream)).config
        assert (kept.max_age, kept.max_bytes) == (3 * 86400.0, 64 * 1024 * 1024)
        assert list(differences) == [settings.subjects.event_stream]
        assert [d.split(":")[0] for d in differences[settings.subjects.event_stream]] == ["max_age"]
        assert "the server has 259200.0" in differences[settings.subjects.event_stream][0]


async def test_a_missing_stream_is_created_with_golives_settings(settings):
    assert await ensure_streams(settings) == {}
    subjects = settings.subjects
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        # by name: a list of every stream is paged, and the suite's server holds hundreds of other tests' streams
        for name in (subjects.command_stream, subjects.event_stream, subjects.dead_letter_stream):
            assert (await nc.jetstream().stream_info(name)).config.name == name
    finally:
        await nc.close()


class Recorded:
    """A logger that keeps its warnings (event name and fields)."""

    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict]] = []

    def warning(self, event: str, **fields) -> None:
        self.warnings.append((event, fields))


async def test_an_existing_kv_bucket_keeps_its_settings_and_the_difference_is_named(settings):
    bucket = f"{settings.subject_root.upper()}_LEASES"
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        await open_bucket(js, KeyValueConfig(bucket=bucket, history=1, ttl=60.0, storage=StorageType.FILE))
        recorded = Recorded()

        kv = await open_bucket(js, KeyValueConfig(bucket=bucket, history=1, ttl=4.0, storage=StorageType.FILE),
                               recorded)

        assert (await kv.status()).ttl == 60.0  # as the operator (or the first coordinator) made it
        [(event, fields)] = recorded.warnings
        assert event == "kv.settings_differ" and [d.split(":")[0] for d in fields["differences"]] == ["max_age"]
    finally:
        await nc.close()


async def test_a_durable_whose_filter_someone_narrowed_gets_it_back(settings):
    stream, subject = settings.subjects.event_stream, settings.subjects.all_events
    async with streams_made(settings) as js:
        durable = Durable(stream, "watched", subject, ack_wait_s=5.0, max_deliver=3, deliver_policy=DeliverPolicy.NEW)
        await js.add_consumer(stream, durable.recreation())
        narrowed = durable.recreation()
        narrowed.filter_subject = settings.subjects.event("nobody", "coordinator", "x")
        await js.add_consumer(stream, narrowed)  # what an unnamed create request naming it does
        recorded = Recorded()

        assert not await check_durable(js, durable, recorded)

        assert (await js.consumer_info(stream, "watched")).config.filter_subject == subject
        assert [event for event, _ in recorded.warnings] == ["consumer.restored"]
