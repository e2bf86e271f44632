"""The migrator's command handling against real PostgreSQL: idempotence, history, the advisory lock,
preflight (pooler, old transactions), lint before anything runs, revert."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from golive.services.migrator import history
from golive.services.migrator.runner import MigrationFailed, apply_migrations, revert_migrations
from golive.shared.commands import (
    ApplyMigrations,
    MigrationPreflight,
    MigrationRetry,
    MigrationSession,
    MigrationStatement,
    MigrationWaiver,
    RevertMigrations,
)
from golive.shared.events import MigrationProgress, OldTransactionsFound
from tests.migrator.migrator_db import history_rows, index_rows

SESSION = MigrationSession(lock_timeout_ms=5000, application_name="golive-migrator-test", progress_interval_s=0.2)
CREATED = MigrationStatement(name="big_created", sql="CREATE INDEX CONCURRENTLY idx_big_created ON big_events (created_at)")
KIND = MigrationStatement(name="big_kind", sql="CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)")


def apply_cmd(*statements: MigrationStatement, preflight: MigrationPreflight | None = None) -> ApplyMigrations:
    return ApplyMigrations(database_url_env="UNUSED", statements=list(statements), session=SESSION,
                           preflight=preflight or MigrationPreflight(), retry=MigrationRetry(max_attempts=2, backoff_s=0.1))


async def test_same_command_delivered_twice_builds_once_and_answers_the_same(big_url, context):
    cmd = apply_cmd(CREATED, KIND)
    first = await apply_migrations(cmd, context(command_id="cmd-twice"))
    oids = _oids(big_url)
    again = await apply_migrations(cmd, context(command_id="cmd-twice"))
    assert again == first  # the same result event, from the history
    assert [r.action for r in first.results] == ["built", "built"]
    assert _oids(big_url) == oids  # no second build
    assert [r[:2] for r in history_rows(big_url, "big_created")] == [("apply", "succeeded")]


async def test_a_later_command_finds_the_index_already_present(big_url, context):
    await apply_migrations(apply_cmd(CREATED), context())
    later = await apply_migrations(apply_cmd(CREATED), context())
    assert later.results[0].action == "already_present"


async def test_builds_hold_no_transaction_on_any_connection(big_url, recorder, context):
    seen = []

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(big_url, autocommit=True) as conn:
            while True:
                rows = await (await conn.execute(
                    "SELECT application_name, state, backend_xmin IS NOT NULL FROM pg_stat_activity "
                    "WHERE application_name LIKE 'golive-migrator%%' AND pid <> pg_backend_pid()")).fetchall()
                seen.extend(rows)
                await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        await apply_migrations(apply_cmd(CREATED), context())
    finally:
        watcher.cancel()
    assert seen, "the migrator's connections were never seen"
    assert not [r for r in seen if r[1] == "idle in transaction"]


async def test_same_name_with_another_statement_is_refused_unless_marked_reapply(big_url, context):
    await apply_migrations(apply_cmd(CREATED), context())
    changed = MigrationStatement(name="big_created", sql="CREATE INDEX CONCURRENTLY idx_big_created2 ON big_events (created_at, id)")
    with pytest.raises(MigrationFailed) as refused:
        await apply_migrations(apply_cmd(changed), context())
    assert refused.value.failure == "invalid"
    assert "big_created: was applied" in refused.value.reason and "reapply" in refused.value.reason
    assert index_rows(big_url) == [("idx_big_created", True, True)]
    marked = changed.model_copy(update={"reapply": True})
    applied = await apply_migrations(apply_cmd(marked), context())
    assert applied.results[0].action == "built"


async def test_history_records_the_run_with_checksum_duration_and_waivers(big_url, context):
    waived = MigrationStatement(
        name="small_plain", sql="CREATE INDEX idx_other_note ON other_things (note)",
        waive=[MigrationWaiver(rule="require-concurrent-index-creation", reason="two rows, in the maintenance window")],
    )
    applied = await apply_migrations(apply_cmd(waived), context(command_id="cmd-hist", run_id="run-hist"))
    assert applied.results[0].waived == ["require-concurrent-index-creation"]
    with psycopg.connect(big_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT run_id, command_id, statement, checksum, status, duration_ms >= 0, finished_at >= started_at, "
            "waivers, applied_by FROM golive_migrations WHERE name = 'small_plain'").fetchone()
    assert row[:3] == ("run-hist", "cmd-hist", waived.sql)
    assert row[3] == history.checksum(waived.sql)
    assert row[4:7] == ("succeeded", True, True)
    assert row[7] == [{"rule": "require-concurrent-index-creation", "reason": "two rows, in the maintenance window"}]
    assert row[8] == "tests"


async def test_only_one_migrator_builds_at_a_time_the_other_waits_for_the_advisory_lock(big_url, recorder, context):
    with psycopg.connect(big_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (history.LOCK_KEY,))
        task = asyncio.create_task(apply_migrations(apply_cmd(CREATED), context()))
        try:
            waiting = await recorder.wait_for(lambda e: isinstance(e, MigrationProgress) and e.name == "(lock)")
            assert index_rows(big_url) == []
            assert waiting.blocking_pid == other.info.backend_pid
            other.execute("SELECT pg_advisory_unlock(%s)", (history.LOCK_KEY,))
            applied = await asyncio.wait_for(task, 60)
        finally:
            task.cancel()
    assert applied.results[0].action == "built"


@pytest.mark.parametrize("url_change", [
    lambda url: psycopg.conninfo.make_conninfo(url, port=6543),
    lambda url: url + ("&" if "?" in url else "?") + "pgbouncer=true",
])
async def test_a_transaction_mode_pooler_is_refused_before_connecting(big_url, context, url_change):
    ctx = context()
    ctx.url = url_change(big_url)
    with pytest.raises(MigrationFailed) as refused:
        await apply_migrations(apply_cmd(CREATED), ctx)
    assert refused.value.failure == "invalid"
    assert "transaction-mode pooler" in refused.value.reason and "session-mode" in refused.value.reason


async def test_lint_errors_refuse_the_whole_command_before_anything_runs(big_url, context):
    bad = MigrationStatement(name="plain", sql="CREATE INDEX idx_big_kind ON big_events (kind)")
    with pytest.raises(MigrationFailed) as refused:
        await apply_migrations(apply_cmd(CREATED, bad), context())
    assert refused.value.failure == "invalid"
    assert "plain: CREATE INDEX without CONCURRENTLY blocks writes" in refused.value.reason
    assert "[require-concurrent-index-creation]" in refused.value.reason
    assert index_rows(big_url) == []


async def _old_transaction(url: str, older_than_s: float) -> psycopg.Connection:
    conn = psycopg.connect(url, application_name="golive-test-old")
    conn.execute("SELECT count(*) FROM other_things").fetchone()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as probe:
        while not (await (await probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND now() - xact_start > make_interval(secs => %s)",
            (conn.info.backend_pid, older_than_s))).fetchone())[0]:
            await asyncio.sleep(0.1)
    return conn


async def test_old_transactions_are_listed_and_fail_the_command_when_the_plan_says_fail(big_url, recorder, context):
    old = await _old_transaction(big_url, 0.3)
    old_pid = old.info.backend_pid
    try:
        policy = MigrationPreflight(old_transaction_s=0.3, on_old_transactions="fail")
        with pytest.raises(MigrationFailed) as refused:
            await apply_migrations(apply_cmd(CREATED, preflight=policy), context())
    finally:
        old.close()
    [found] = recorder.of(OldTransactionsFound)
    assert [t.pid for t in found.transactions] == [old_pid]
    assert found.transactions[0].state == "idle in transaction"
    assert "other_things" in found.transactions[0].query
    assert f"pid {old_pid}" in refused.value.reason
    assert index_rows(big_url) == []


async def test_old_transactions_policy_wait_builds_once_they_end(big_url, recorder, context):
    old = await _old_transaction(big_url, 0.3)
    policy = MigrationPreflight(old_transaction_s=0.3, on_old_transactions="wait")
    task = asyncio.create_task(apply_migrations(apply_cmd(CREATED, preflight=policy), context()))
    try:
        await recorder.wait_for(lambda e: isinstance(e, OldTransactionsFound))
        assert index_rows(big_url) == []
        old.rollback()
        applied = await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        old.close()
    assert applied.results[0].action == "built"


async def test_old_transactions_policy_continue_lists_them_and_goes_on(big_url, recorder, context):
    old = await _old_transaction(big_url, 0.3)
    analyze = MigrationStatement(name="analyze_big", sql="ANALYZE big_events")
    try:
        policy = MigrationPreflight(old_transaction_s=0.3, on_old_transactions="continue")
        applied = await apply_migrations(apply_cmd(analyze, preflight=policy), context())
    finally:
        old.close()
    assert len(recorder.of(OldTransactionsFound)) == 1
    assert applied.results[0].action == "executed"


async def test_revert_drops_this_runs_indexes_newest_first_idempotently(big_url, recorder, context):
    await apply_migrations(apply_cmd(CREATED, KIND), context())
    revert = RevertMigrations(database_url_env="UNUSED", statements=[CREATED, KIND], session=SESSION)
    reverted = await revert_migrations(revert, context(command_id="cmd-revert"))
    assert reverted.dropped == ["idx_big_kind", "idx_big_created"]
    assert index_rows(big_url) == []
    assert await revert_migrations(revert, context(command_id="cmd-revert")) == reverted  # redelivered
    again = await revert_migrations(revert, context())
    assert [r.action for r in again.results] == ["absent", "absent"] and again.dropped == []
    assert [r[:3] for r in history_rows(big_url, "big_kind")][:2] == [("apply", "succeeded", "built"),
                                                                       ("revert", "succeeded", "dropped")]
    with psycopg.connect(big_url, autocommit=True) as conn:
        order = conn.execute("SELECT name FROM golive_migrations WHERE operation = 'revert' AND command_id = 'cmd-revert' "
                             "ORDER BY id").fetchall()
    assert order == [("big_kind",), ("big_created",)]  # newest first


async def test_vacuum_analyze_runs_in_autocommit_after_the_builds(big_url, context):
    vacuum = MigrationStatement(name="vacuum_big", sql="VACUUM (ANALYZE) big_events")
    applied = await apply_migrations(apply_cmd(CREATED, vacuum), context())
    assert [r.action for r in applied.results] == ["built", "executed"]
    with psycopg.connect(big_url, autocommit=True) as conn:
        vacuumed = conn.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'big_events'").fetchone()
    assert vacuumed == (True,)


def _oids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT indexrelid FROM pg_index WHERE indrelid = 'big_events'::regclass ORDER BY 1").fetchall()]


async def test_vacuum_waits_while_another_session_builds_an_index_on_its_table(big_url, blocker, recorder, context):
    held = blocker()
    outside = await psycopg.AsyncConnection.connect(big_url, autocommit=True)
    build = asyncio.create_task(outside.execute("CREATE INDEX CONCURRENTLY idx_outside ON big_events (kind)"))
    vacuum = MigrationStatement(name="vacuum_big", sql="VACUUM (ANALYZE) big_events")
    task = asyncio.create_task(apply_migrations(apply_cmd(vacuum), context()))
    try:
        async with await psycopg.AsyncConnection.connect(big_url, autocommit=True) as probe:
            while not (await (await probe.execute("SELECT to_regclass('golive_migrations') IS NOT NULL")).fetchone())[0]:
                await asyncio.sleep(0.05)
            while not (await (await probe.execute(
                    "SELECT count(*) FROM golive_migrations WHERE name = 'vacuum_big' AND status = 'running'")).fetchone())[0]:
                await asyncio.sleep(0.05)  # the migrator took the statement on ...
            await asyncio.sleep(0.5)
            vacuuming = (await (await probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'golive-migrator-test' "
                "AND query ILIKE 'VACUUM%%' AND state = 'active'")).fetchone())[0]
        assert not task.done() and vacuuming == 0  # ... and does not send VACUUM while the (blocked) build goes on
        held.end()
        await asyncio.wait_for(build, 60)
        applied = await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        build.cancel()
        await outside.close()
    assert applied.results[0].action == "executed"


async def test_revert_keeps_an_index_that_was_there_before_the_run(big_url, context):
    await apply_migrations(apply_cmd(CREATED), context(run_id="run-earlier"))
    applied = await apply_migrations(apply_cmd(CREATED, KIND), context(run_id="run-now"))
    assert [r.action for r in applied.results] == ["already_present", "built"]

    revert = RevertMigrations(database_url_env="UNUSED", statements=[CREATED, KIND], session=SESSION)
    reverted = await revert_migrations(revert, context(run_id="run-now"))

    assert [(r.name, r.action) for r in reverted.results] == [("big_kind", "dropped"), ("big_created", "kept")]
    assert index_rows(big_url) == [("idx_big_created", True, True)]
