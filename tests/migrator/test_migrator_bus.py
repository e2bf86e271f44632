"""The migrator service on a real nats-server: progress events correlated to the command while it builds,
the result event, and a command delivered twice answered twice with the same result and built once."""

from __future__ import annotations

import asyncio

import nats

from golive.services.migrator.service import register
from golive.shared.bus import Bus
from golive.shared.commands import ApplyMigrations, MigrationSession, MigrationStatement
from golive.shared.envelope import Envelope, new_envelope, parse_envelope
from golive.shared.events import CommandFailed, MigrationProgress, MigrationsApplied
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging
from tests.harness import record_run_started
from tests.migrator.migrator_db import history_rows, index_rows

DB_ENV = "GOLIVE_MIGRATOR_BUS_TEST_DB"
APPLY = ApplyMigrations(
    database_url_env=DB_ENV,
    statements=[MigrationStatement(name="big_created",
                                   sql="CREATE INDEX CONCURRENTLY idx_big_created ON big_events (created_at)")],
    session=MigrationSession(lock_timeout_ms=5000, progress_interval_s=0.2),
)


async def send(settings: Settings, data, command_id: str, msg_id: str, run_id: str = "run-mig") -> None:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        body = new_envelope(data, id=command_id, source="/tests", runid=run_id).to_json()
        await record_run_started(nc.jetstream(), settings.subjects, run_id)  # the migrator works only for a run
        await nc.jetstream().publish(settings.subjects.command("migrator", "apply"), body,
                                     stream=settings.subjects.command_stream, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def events_until(settings: Settings, run_id: str, done, timeout_s: float = 60.0) -> list[Envelope]:
    nc = await nats.connect(settings.resolved_nats_url())
    seen: list[Envelope] = []
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(run_id), ordered_consumer=True)
        while not done(seen):
            seen.append(parse_envelope((await sub.next_msg(timeout=timeout_s)).data))
        return seen
    finally:
        await nc.close()


async def test_progress_and_result_on_the_bus_and_a_redelivered_command_answers_the_same(
        settings, big_url, blocker, monkeypatch):
    monkeypatch.setenv(DB_ENV, big_url)
    bus = Bus(settings, "migrator", ServiceMetrics("migrator"), configure_logging("migrator", "WARNING"))
    register(bus)
    answers = []
    handler = bus._command_handlers[ApplyMigrations]

    async def recording(cmd, work):
        answers.append(await handler(cmd, work))
        return answers[-1]

    bus.on_command(ApplyMigrations, recording)
    await bus.start()
    try:
        held = blocker()  # the build waits for it: progress is polled and published meanwhile
        await send(settings, APPLY, "cmd-apply", msg_id="cmd-apply")
        # the blocker ends only once the build is seen waiting for it: ended at the first progress event (which may
        # come before the build reaches its wait on a busy machine), the build would never wait at all
        await events_until(settings, "run-mig", lambda s: any(
            isinstance(e.data, MigrationProgress) and e.data.status == "waiting" for e in s))
        held.end()
        seen = await events_until(settings, "run-mig", lambda s: any(isinstance(e.data, MigrationsApplied) for e in s))
        await send(settings, APPLY, "cmd-apply", msg_id="cmd-apply/redelivered")  # as if JetStream redelivered it
        while len(answers) < 2:
            await asyncio.sleep(0.1)
    finally:
        await bus.stop()
    progress = [e for e in seen if isinstance(e.data, MigrationProgress)]
    [applied] = [e for e in seen if isinstance(e.data, MigrationsApplied)]
    assert not [e for e in seen if isinstance(e.data, CommandFailed)]
    assert any(e.data.status == "waiting" and e.data.blocking_pid == held.pid for e in progress)
    assert progress[-1].data.status == "done"
    assert {e.correlationid for e in progress} == {"cmd-apply"} and applied.correlationid == "cmd-apply"
    assert len({e.id for e in progress}) == len(progress)
    assert answers[0] == answers[1] == applied.data  # the same result event twice
    assert applied.data.results[0].action == "built"
    assert index_rows(big_url) == [("idx_big_created", True, True)]
    assert [r[:2] for r in history_rows(big_url, "big_created")] == [("apply", "succeeded")]  # built once
