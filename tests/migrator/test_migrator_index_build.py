"""Index builds against a real PostgreSQL: alone, in autocommit, idempotent, repairing invalid indexes."""

from __future__ import annotations

import psycopg
import pytest

from golive.services.migrator.index_build import apply, drop_statement_index, index_state, open_session
from golive.services.migrator.statements import classify
from golive.shared.commands import MigrationSession

SESSION = MigrationSession(lock_timeout_ms=2000, application_name="golive-migrator-test")


async def test_build_runs_outside_any_transaction_and_leaves_a_valid_index(database_url):
    async with await open_session(database_url, SESSION) as conn:
        statement = classify("CREATE INDEX CONCURRENTLY idx_created ON stripe_events(created_at)")
        result = await apply(conn, "created", statement)
        assert result.action == "built"
        assert await index_state(conn, statement) == (True, True)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        settings = await (await conn.execute("SELECT current_setting('lock_timeout'), current_setting('application_name')")).fetchone()
        assert settings == ("2s", "golive-migrator-test")


async def test_second_apply_reports_already_present_and_does_not_rebuild(database_url):
    statement = classify("CREATE INDEX CONCURRENTLY idx_type ON stripe_events(type)")
    async with await open_session(database_url, SESSION) as conn:
        await apply(conn, "type", statement)
        oid_before = await (await conn.execute("SELECT 'idx_type'::regclass::oid")).fetchone()
        again = await apply(conn, "type", statement)
        oid_after = await (await conn.execute("SELECT 'idx_type'::regclass::oid")).fetchone()
    assert again.action == "already_present"
    assert oid_before == oid_after


async def test_invalid_index_left_by_a_failed_build_is_dropped_and_rebuilt(database_url):
    unique = classify("CREATE UNIQUE INDEX CONCURRENTLY idx_type_once ON stripe_events(type)")
    async with await open_session(database_url, SESSION) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            await apply(conn, "type_once", unique)  # many rows share a type
        valid, _ready = await index_state(conn, unique)
        assert valid is False  # PostgreSQL leaves the failed build behind as an INVALID index
        await conn.execute("DELETE FROM stripe_events WHERE id NOT IN (SELECT min(id) FROM stripe_events GROUP BY type)")
        result = await apply(conn, "type_once", unique)
        assert result.action == "rebuilt_invalid"
        assert await index_state(conn, unique) == (True, True)


async def test_drop_index_is_idempotent(database_url):
    async with await open_session(database_url, SESSION) as conn:
        statement = classify("CREATE INDEX CONCURRENTLY idx_drop_me ON stripe_events(created_at)")
        await apply(conn, "c", statement)
        assert await drop_statement_index(conn, statement) is True
        assert await drop_statement_index(conn, statement) is False
        assert await index_state(conn, statement) is None
