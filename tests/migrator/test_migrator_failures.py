"""The migrator against real PostgreSQL when things go wrong mid-build: a blocking transaction, a lock
timeout, a terminated backend, duplicate keys (a killed migrator: test_migrator_killed.py). Never an invalid
index left behind."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from golive.services.migrator.runner import MigrationFailed, apply_migrations
from golive.shared.commands import ApplyMigrations, MigrationRetry, MigrationSession, MigrationStatement
from golive.shared.events import MigrationProgress, MigrationsApplied
from tests.migrator.migrator_db import history_rows, index_rows, terminate_build

BUILD = "CREATE INDEX CONCURRENTLY idx_big_created ON big_events (created_at)"


def command(sql: str = BUILD, *, lock_timeout_ms: int = 0, attempts: int = 3, name: str = "big_created",
            backoff_s: float = 0.2) -> ApplyMigrations:
    return ApplyMigrations(
        database_url_env="UNUSED_IN_THESE_TESTS",
        statements=[MigrationStatement(name=name, sql=sql)],
        session=MigrationSession(lock_timeout_ms=lock_timeout_ms, application_name="golive-migrator-test",
                                 progress_interval_s=0.2),
        retry=MigrationRetry(max_attempts=attempts, backoff_s=backoff_s),
    )


def waiting_on(pid: int, attempt: int = 1):
    return lambda e: (isinstance(e, MigrationProgress) and e.status == "waiting" and e.blocking_pid == pid
                      and e.attempt == attempt)


def status(name: str, attempt: int | None = None):
    return lambda e: isinstance(e, MigrationProgress) and e.status == name and (attempt is None or e.attempt == attempt)


async def retried_and_done(recorder, held, task) -> tuple[MigrationProgress, MigrationsApplied]:
    """The build's retry (its report), once it waits at the blocker ``held`` again; then the blocker ends and the
    apply ``task`` finishes (its result)."""
    retrying = await recorder.wait_for(status("retrying"))
    await recorder.wait_for(waiting_on(held.pid, attempt=2))
    held.end()
    return retrying, await asyncio.wait_for(task, 60)


async def test_blocker_is_reported_as_waiting_then_lock_timeout_drops_the_invalid_index_and_retry_succeeds(
        big_url, blocker, recorder, context):
    held = blocker()
    task = asyncio.create_task(apply_migrations(command(lock_timeout_ms=1000, attempts=10), context()))
    try:
        waiting = await recorder.wait_for(waiting_on(held.pid))
        # the retry dropped the invalid index left by the lock timeout and builds again (waiting again)
        retrying, applied = await retried_and_done(recorder, held, task)
    finally:
        task.cancel()
    assert waiting.phase == "waiting for old snapshots"
    assert "SELECT count(*) FROM other_things" in (waiting.blocking_query or "")
    assert waiting.overall_percent is not None and 95.0 <= waiting.overall_percent < 100.0
    assert "lock timeout" in (retrying.error or "") and "55P03" in retrying.error
    [result] = applied.results
    assert result.action == "built" and result.attempts >= 2
    assert index_rows(big_url) == [("idx_big_created", True, True)]
    assert history_rows(big_url, "big_created")[-1][:3] == ("apply", "succeeded", "built")


async def test_progress_reports_phases_percentages_and_ends_done(big_url, blocker, recorder, context):
    held = blocker()
    task = asyncio.create_task(apply_migrations(command(), context()))
    try:
        await recorder.wait_for(waiting_on(held.pid))
        held.end()
        applied = await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    progress = recorder.of(MigrationProgress)
    assert progress[-1].status == "done" and progress[-1].overall_percent == 100.0
    assert applied.results[0].action == "built"
    polled = [e for e in progress if e.status in ("progress", "waiting")]
    assert polled and all(e.phase for e in polled)
    percents = [e.overall_percent for e in polled if e.overall_percent is not None]
    assert percents and percents == sorted(percents)  # overall progress never goes back within one attempt
    assert [e.elapsed_s for e in polled] == sorted(e.elapsed_s for e in polled)


async def test_a_build_done_within_one_poll_interval_is_reported_by_its_result_alone(big_url, recorder, context):
    cmd = command("CREATE INDEX CONCURRENTLY idx_other_note ON other_things (note)", name="other_note")
    cmd = cmd.model_copy(update={"session": cmd.session.model_copy(update={"progress_interval_s": 1.0})})

    applied = await apply_migrations(cmd, context())

    assert applied.results[0].action == "built"
    assert recorder.of(MigrationProgress) == []


async def test_terminated_backend_mid_build_is_repaired_and_the_build_retried(big_url, blocker, recorder, context):
    held = blocker()
    task = asyncio.create_task(apply_migrations(command(attempts=3), context()))
    try:
        await recorder.wait_for(waiting_on(held.pid))
        await terminate_build(big_url)
        retrying, applied = await retried_and_done(recorder, held, task)
    finally:
        task.cancel()
    assert "terminat" in (retrying.error or "")
    assert applied.results[0].attempts == 2
    assert index_rows(big_url) == [("idx_big_created", True, True)]


async def test_terminated_backend_without_retries_left_fails_with_the_reason_and_leaves_no_index(
        big_url, blocker, recorder, context):
    held = blocker()
    task = asyncio.create_task(apply_migrations(command(attempts=1), context()))
    try:
        await recorder.wait_for(waiting_on(held.pid))
        await terminate_build(big_url)
        with pytest.raises(MigrationFailed) as failed:
            await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        held.end()
    assert "terminat" in failed.value.reason
    assert "the invalid index idx_big_created was dropped" in failed.value.reason
    assert failed.value.failure == "transient"
    assert index_rows(big_url) == []
    assert history_rows(big_url, "big_created")[-1][:2] == ("apply", "failed")


async def test_unique_index_over_duplicates_names_the_key_and_leaves_no_invalid_index(big_url, context):
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute("UPDATE big_events SET key = 'k7' WHERE id = 150000")
    unique = "CREATE UNIQUE INDEX CONCURRENTLY idx_big_key ON big_events (key)"
    with pytest.raises(MigrationFailed) as failed:
        await apply_migrations(command(unique, name="big_key"), context())
    assert "Key (key)=(k7) is duplicated" in failed.value.reason
    assert "could not create unique index" in failed.value.reason
    assert "the invalid index idx_big_key was dropped" in failed.value.reason
    assert failed.value.failure == "fatal"
    assert index_rows(big_url) == []
    [(operation, state, _action, attempts, error, error_statement)] = history_rows(big_url, "big_key")
    assert (operation, state, attempts) == ("apply", "failed", 1)
    assert "Key (key)=(k7) is duplicated" in error and error_statement == unique
