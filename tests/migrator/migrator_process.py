"""The migrator service as its own process, the way `golive serve migrator` runs it, with a short ack_wait so a
killed process's command is redelivered in seconds; and a backend's end, seen from PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg

from golive.shared.commands import ApplyMigrations, MigrationSession, MigrationStatement
from golive.stack.service_processes import DATABASE_ENV
from tests.harness import REPO, golive_popen

ACK_WAIT_S = 3.0
SERVE_MIGRATOR = [sys.executable, "-m", "golive", "serve", "migrator"]
APPLY = ApplyMigrations(
    database_url_env=DATABASE_ENV,
    statements=[MigrationStatement(name="big_created",
                                   sql="CREATE INDEX CONCURRENTLY idx_big_created ON big_events (created_at)")],
    session=MigrationSession(lock_timeout_ms=0, progress_interval_s=0.2),
)


def start_migrator(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`golive serve migrator` with ack_wait ACK_WAIT_S, its output appended to ``log``."""
    with log.open("ab") as out:
        return golive_popen(SERVE_MIGRATOR, env={**env, "GOLIVE_COMMAND_ACK_WAIT_S": str(ACK_WAIT_S)}, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)


async def gone(url: str, pid: int) -> None:
    """Wait until backend ``pid`` has ended."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while (await (await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))).fetchone())[0]:
            await asyncio.sleep(0.1)
