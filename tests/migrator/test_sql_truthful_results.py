"""What the migrator reports is what happened (issue 12, finding 8): an index another session built while this
migrator waited out a lock is already_present, not `built … after 2 attempts`; a real run does not call itself
a dry run."""

from __future__ import annotations

import asyncio

import psycopg

from golive.services.migrator.dry_run import dry_run
from golive.services.migrator.runner import apply_migrations
from golive.shared.commands import ApplyMigrations, MigrationRetry, MigrationSession, MigrationStatement
from golive.shared.events import MigrationProgress
from tests.migrator.migrator_db import index_rows

KIND = "CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)"


def command(lock_timeout_ms: int = 300) -> ApplyMigrations:
    return ApplyMigrations(
        database_url_env="UNUSED", statements=[MigrationStatement(name="big_kind", sql=KIND)],
        session=MigrationSession(lock_timeout_ms=lock_timeout_ms, application_name="golive-migrator-test",
                                 progress_interval_s=0.2),
        retry=MigrationRetry(max_attempts=8, backoff_s=0.2),
    )


async def test_an_index_another_session_built_while_this_one_waited_is_already_present(big_url, recorder, context):
    other = psycopg.connect(big_url)  # another session builds the same index, holding its lock until commit
    try:
        other.execute("CREATE INDEX idx_big_kind ON big_events (kind)")
        task = asyncio.create_task(apply_migrations(command(), context()))
        await recorder.wait_for(lambda e: isinstance(e, MigrationProgress) and e.status == "retrying")
        other.commit()
        applied = await task
    finally:
        other.close()

    [result] = applied.results
    assert result.action == "already_present" and result.attempts > 1
    assert index_rows(big_url) == [("idx_big_kind", True, True)]


def test_a_real_run_is_not_announced_as_a_dry_run():
    cmd = command()

    real, ok = dry_run(cmd, dry=False)
    dry, _ = dry_run(cmd)

    assert ok and not [line for line in real if "dry run" in line or "would run" in line]
    assert "would run (dry run: nothing was touched):" in dry
