"""The run that started an index build owns the index, whatever its migrator saw (issue 14, finding 4).

The migrator process is SIGKILLed after PostgreSQL finished the build and before the migrator recorded it: the
test holds a SHARE lock on the history table once the build runs, so the migrator's write of the result waits,
and kills it there (the index reads valid in pg_index, the migrator's backend waits on the history table). The
redelivered apply must call the index built by its run, and a revert of the run must drop it; an index that was
there before the run, or that another session built after this run's build failed, is never dropped.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable

import nats
import psycopg
import pytest

from golive.services.migrator.runner import Context, apply_migrations, revert_migrations
from golive.shared.bus import ensure_streams
from golive.shared.commands import (
    MigrationRetry,
    MigrationSession,
    RevertMigrations,
)
from golive.shared.envelope import new_envelope, parse_envelope
from golive.shared.events import (
    CommandFailed,
    MigrationProgress,
    MigrationsApplied,
    MigrationsReverted,
)
from golive.stack.process import stop_process
from golive.stack.service_processes import DATABASE_ENV, service_env
from tests.harness import record_run_started
from tests.migrator.migrator_db import build_pid, history_rows, index_rows
from tests.migrator.migrator_process import APPLY, gone, start_migrator

RUN = "run-own"
REVERT = RevertMigrations(database_url_env=DATABASE_ENV, statements=APPLY.statements,
                          session=MigrationSession(lock_timeout_ms=0, progress_interval_s=0.2))
INDEX = "idx_big_created"


@pytest.fixture
def migrator(settings, big_url, tmp_path):
    """``start()`` runs golive's real migrator service process; every one is stopped at teardown."""
    env = service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, DATABASE_ENV: big_url, "GOLIVE_LOG_LEVEL": "INFO"})
    log = tmp_path / "migrator.log"
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        procs.append(start_migrator(env, log))
        return procs[-1]

    start.log = log
    yield start
    for proc in procs:
        stop_process(proc, 15)


async def waits_on_the_history_table(url: str, pid: int) -> None:
    """Until backend ``pid`` waits for a lock on golive_migrations (the build's own waits are on other locks)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not (await (await conn.execute(
                "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted "
                "AND relation = to_regclass('golive_migrations'))", (pid,))).fetchone())[0]:
            await asyncio.sleep(0.1)


async def send_apply(settings, js) -> None:
    await ensure_streams(settings)
    await record_run_started(js, settings.subjects, RUN)  # the migrator works only for a run it knows
    command = new_envelope(APPLY, id=f"{RUN}.migrate", source="/tests", runid=RUN)
    await js.publish(settings.subjects.command("migrator", "apply"), command.to_json(),
                     stream=settings.subjects.command_stream, headers={"Nats-Msg-Id": command.id})


async def apply_killed(settings, kill: Callable[[], Awaitable[None]]) -> None:
    """Send the run's apply, then ``kill()`` the migrator that took it; the apply is never answered."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        await send_apply(settings, nc.jetstream())
        await kill()
    finally:
        await nc.close()


async def kill_after_the_build(url: str, blocker, proc: subprocess.Popen) -> None:
    """SIGKILL the migrator once PostgreSQL finished its build and before the migrator recorded it."""
    held = blocker()  # holds the build in 'waiting for old snapshots' while the history table is locked
    pid = await asyncio.wait_for(build_pid(url), 60)
    lock = psycopg.connect(url)
    try:
        lock.execute("LOCK TABLE golive_migrations IN SHARE MODE")  # no snapshot: the build does not wait for it
        held.end()
        await asyncio.wait_for(waits_on_the_history_table(url, pid), 60)
        assert index_rows(url) == [(INDEX, True, True)]  # the server finished the build
        proc.kill()  # SIGKILL: the build's result is never recorded nor answered
        proc.wait(timeout=10)
        await asyncio.wait_for(gone(url, pid), 30)  # its backend dies waiting: it never writes the result
    finally:
        lock.rollback()
        lock.close()


async def kill_mid_build(url: str, blocker, proc: subprocess.Popen) -> None:
    """SIGKILL the migrator while its build waits: the server stops the orphaned build and leaves it invalid."""
    held = blocker()
    pid = await asyncio.wait_for(build_pid(url), 60)
    proc.kill()
    proc.wait(timeout=10)
    await asyncio.wait_for(gone(url, pid), 30)
    held.end()
    assert index_rows(url)[0][:2] == (INDEX, False)  # left invalid by the server


async def answer_to(results, command_id: str):
    while True:
        answer = parse_envelope((await results.next_msg(timeout=90)).data)
        if answer.correlationid == command_id and isinstance(
                answer.data, (MigrationsApplied, MigrationsReverted, CommandFailed)):
            return answer.data


def owns_index(url: str) -> list[tuple]:
    """(operation, status, owns_index, error) of the test statement's history rows, oldest first."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT operation, status, owns_index, error FROM golive_migrations "
                            "WHERE name = 'big_created' ORDER BY id").fetchall()


async def test_a_redelivered_apply_after_a_kill_past_the_build_says_built_and_the_runs_revert_drops_it(
        settings, big_url, blocker, migrator):
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        await send_apply(settings, js)
        await kill_after_the_build(big_url, blocker, migrator())
        results = await js.subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        migrator()  # JetStream redelivers the apply the dead migrator never answered
        applied = await answer_to(results, f"{RUN}.migrate")
        revert = new_envelope(REVERT, id=f"{RUN}.revert", source="/tests", runid=RUN)
        await js.publish(settings.subjects.command("migrator", "revert"), revert.to_json(),
                         stream=settings.subjects.command_stream, headers={"Nats-Msg-Id": revert.id})
        reverted = await answer_to(results, f"{RUN}.revert")
    finally:
        await nc.close()

    assert isinstance(applied, MigrationsApplied), (applied, migrator.log.read_text()[-3000:])
    assert applied.results[0].action == "built"  # by this run: its first delivery started the build
    assert isinstance(reverted, MigrationsReverted), reverted
    assert reverted.dropped == [INDEX] and reverted.results[0].action == "dropped"
    assert index_rows(big_url) == []
    assert [r[:3] for r in history_rows(big_url, "big_created")] == [
        ("apply", "failed", None), ("apply", "succeeded", "built"), ("revert", "succeeded", "dropped")]
    abandoned = owns_index(big_url)[0]
    assert abandoned[2] and "after sending its build" in abandoned[3]


async def test_a_revert_after_a_kill_past_the_build_drops_the_index_the_run_started(
        settings, big_url, blocker, migrator):
    await apply_killed(settings, lambda: kill_after_the_build(big_url, blocker, migrator()))

    # the coordinator gave up on the apply and compensates: no apply ever recorded the build
    reverted = await revert_migrations(REVERT, Context(url=big_url, run_id=RUN, command_id=f"{RUN}.revert"))

    assert reverted.dropped == [INDEX] and index_rows(big_url) == []
    assert [r[:3] for r in history_rows(big_url, "big_created")] == [
        ("apply", "failed", None), ("revert", "succeeded", "dropped")]


async def test_a_revert_after_a_kill_mid_build_drops_the_invalid_index_the_run_left(
        settings, big_url, blocker, migrator):
    await apply_killed(settings, lambda: kill_mid_build(big_url, blocker, migrator()))

    reverted = await revert_migrations(REVERT, Context(url=big_url, run_id=RUN, command_id=f"{RUN}.revert"))

    assert reverted.dropped == [INDEX] and index_rows(big_url) == []


async def test_another_runs_revert_keeps_the_index_this_run_built(big_url, context):
    await apply_migrations(APPLY, context(run_id="run-a"))
    later = await apply_migrations(APPLY, context(run_id="run-b"))
    kept = await revert_migrations(REVERT, context(run_id="run-b"))
    dropped = await revert_migrations(REVERT, context(run_id="run-a"))

    assert later.results[0].action == "already_present"
    assert kept.results[0].action == "kept" and dropped.results[0].action == "dropped"
    assert index_rows(big_url) == []


async def test_an_index_another_session_built_after_this_runs_build_failed_is_not_this_runs(
        big_url, recorder, context: Callable[..., Context]):
    apply = APPLY.model_copy(update={
        "session": MigrationSession(lock_timeout_ms=300, progress_interval_s=0.2),
        "retry": MigrationRetry(max_attempts=8, backoff_s=0.2)})
    other = psycopg.connect(big_url)  # builds the same index, holding its lock (our build times out) until commit
    try:
        other.execute(f"CREATE INDEX {INDEX} ON big_events (created_at)")
        task = asyncio.create_task(apply_migrations(apply, context(run_id=RUN)))
        await recorder.wait_for(lambda e: isinstance(e, MigrationProgress) and e.status == "retrying")
        other.commit()
        applied = await task
    finally:
        other.close()
    reverted = await revert_migrations(REVERT, context(run_id=RUN))

    assert applied.results[0].action == "already_present"
    assert reverted.results[0].action == "kept" and index_rows(big_url) == [(INDEX, True, True)]


async def test_a_history_table_of_an_earlier_version_keeps_what_its_runs_built(big_url, context):
    await apply_migrations(APPLY, context(run_id=RUN))
    with psycopg.connect(big_url, autocommit=True) as conn:  # the table as golive wrote it before owns_index
        conn.execute("ALTER TABLE golive_migrations DROP COLUMN owns_index")

    reverted = await revert_migrations(REVERT, context(run_id=RUN))

    assert reverted.results[0].action == "dropped" and index_rows(big_url) == []
    assert [r[:3] for r in owns_index(big_url)] == [("apply", "succeeded", True), ("revert", "succeeded", False)]


async def waits_for_a_build_to_end(url: str) -> None:
    """Until some session asks whether an index is still being built (the revert judging an invalid index)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not (await (await conn.execute(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND query LIKE '%%pg_stat_progress_create_index WHERE index_relid%%')")).fetchone())[0]:
            await asyncio.sleep(0.1)


async def test_a_revert_keeps_an_index_another_session_is_building_once_it_turns_valid(big_url, blocker, context):
    held = blocker()  # the other session's build waits for it, reading invalid meanwhile

    def other_build() -> None:
        with psycopg.connect(big_url, autocommit=True) as conn:
            conn.execute(f"CREATE INDEX CONCURRENTLY {INDEX} ON big_events (created_at)")

    building = asyncio.create_task(asyncio.to_thread(other_build))
    try:
        await asyncio.wait_for(build_pid(big_url), 60)
        revert = asyncio.create_task(revert_migrations(REVERT, context(run_id=RUN)))
        await asyncio.wait_for(waits_for_a_build_to_end(big_url), 60)
        held.end()
        reverted = await asyncio.wait_for(revert, 60)
    finally:
        held.end()
        await building

    assert reverted.results[0].action == "kept" and index_rows(big_url) == [(INDEX, True, True)]
