"""A blocking session whose query holds a password never leaks it (issue 12, finding 6), and authentication
failures are fatal, not retried as transient. Against real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets

import psycopg
import pytest

from golive.services.migrator.runner import Context, MigrationFailed, apply_migrations
from golive.shared.commands import ApplyMigrations, MigrationPreflight, MigrationRetry, MigrationSession, MigrationStatement
from golive.shared.events import MigrationProgress, OldTransactionsFound
from tests.harness import run_cli

SECRET = "s3cr3t-hunter2-pw"
SESSION = MigrationSession(lock_timeout_ms=0, application_name="golive-migrator-test", progress_interval_s=0.2)


@pytest.fixture
def role(postgres_admin_url):
    name = f"golive_t_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} NOLOGIN")
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def password_blocker(big_url, role):
    """A transaction with an old snapshot whose last query sets a password: CREATE INDEX CONCURRENTLY waits for
    it, and pg_stat_activity shows its query, password and all."""
    conn = psycopg.connect(big_url, application_name="golive-test-blocker")
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    conn.execute("SELECT count(*) FROM other_things").fetchone()
    conn.execute(f"ALTER ROLE {role} PASSWORD $${SECRET}$$")
    yield conn
    if not conn.closed:
        conn.rollback()
        conn.close()


def command(policy: str) -> ApplyMigrations:
    return ApplyMigrations(
        database_url_env="MIGRATE_TEST_DB", session=SESSION, retry=MigrationRetry(max_attempts=1),
        preflight=MigrationPreflight(old_transaction_s=0.001, on_old_transactions=policy),
        statements=[MigrationStatement(name="big_kind",
                                       sql="CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)")])


async def test_a_blockers_password_never_reaches_an_event(password_blocker, recorder, context):
    pid = password_blocker.info.backend_pid
    task = asyncio.create_task(apply_migrations(command("continue"), context()))
    try:
        waiting = await recorder.wait_for(lambda e: isinstance(e, MigrationProgress) and e.blocking_pid == pid)
    finally:
        password_blocker.rollback()
        password_blocker.close()
    await task

    assert waiting.blocking_query.startswith("ALTER ROLE") and "PASSWORD $1" in waiting.blocking_query
    [found] = recorder.of(OldTransactionsFound)
    assert [t.query for t in found.transactions if t.pid == pid] == [waiting.blocking_query]
    assert not [e for e in recorder.events if SECRET in e.model_dump_json()]


def test_migrate_shows_an_old_transactions_query_without_its_password(password_blocker, big_url, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: migrate-only\ndatabase: {url_env: MIGRATE_TEST_DB}\n"
        "migrations:\n  preflight: {old_transaction_s: 0.001, on_old_transactions: fail}\n  statements:\n"
        "    - {name: big_kind, sql: CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)}\n"
        "canary:\n  stages: [{weight: 100, hold: 1s}]\n")

    done = run_cli("migrate", str(plan), env={**os.environ, "MIGRATE_TEST_DB": big_url})

    assert done.returncode == 1, done.stdout + done.stderr
    assert "ALTER ROLE" in done.stdout and "PASSWORD $1" in done.stdout
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize("who", ["no_such_role", "nologin"])
async def test_an_authentication_failure_is_fatal_not_transient(big_url, recorder, role, who):
    user = role if who == "nologin" else f"golive_missing_{secrets.token_hex(4)}"
    url = psycopg.conninfo.make_conninfo(big_url, user=user)

    with pytest.raises(MigrationFailed) as failed:
        await apply_migrations(command("continue"), Context(url=url, run_id="run-auth", command_id="cmd-auth",
                                                            emit=recorder.emit))

    assert failed.value.failure == "fatal", failed.value.reason
