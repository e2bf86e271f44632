"""The migrations history (table golive_migrations) and the one-migrator-per-database lock.

Rows are written in autocommit on the session connection between statements, never during a build, so
the history holds no transaction a build would wait for. The lock is a session-level advisory lock
(not a transaction-level one: a transaction held open would make our own build wait for it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

import psycopg

TABLE = "golive_migrations"
LOCK_KEY = 0x676F6C697665  # "golive": one migrator per database at a time

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL,
    command_id text NOT NULL,
    operation text NOT NULL CHECK (operation IN ('apply', 'revert')),
    name text NOT NULL,
    statement text NOT NULL,
    checksum text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    action text,
    attempts integer NOT NULL DEFAULT 1,
    waivers jsonb NOT NULL DEFAULT '[]',
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    duration_ms bigint,
    error text,
    error_statement text,
    applied_by text NOT NULL
)
"""
_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_name ON {TABLE} (name, id)"


def checksum(sql: str) -> str:
    """sha256 of the statement as it runs."""
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """The last finished row of a name."""

    operation: str
    checksum: str
    command_id: str
    action: str | None
    duration_ms: int | None
    attempts: int
    status: str


async def ensure_table(conn: psycopg.AsyncConnection) -> None:
    """Create the history table once (under the advisory lock, so two migrators never race here)."""
    exists = await (await conn.execute("SELECT to_regclass(%s)", (TABLE,))).fetchone()
    if exists and exists[0]:
        return
    await conn.execute(_CREATE)
    await conn.execute(_INDEX)


async def last_finished(conn: psycopg.AsyncConnection, name: str) -> Applied | None:
    """The name's last succeeded apply or revert: what the database holds for it now."""
    row = await (await conn.execute(
        f"SELECT operation, checksum, command_id, action, duration_ms, attempts, status FROM {TABLE} "
        "WHERE name = %s AND status = 'succeeded' ORDER BY id DESC LIMIT 1", (name,),
    )).fetchone()
    return Applied(*row) if row else None


async def done_by_command(conn: psycopg.AsyncConnection, command_id: str, operation: str, name: str) -> Applied | None:
    """This command's succeeded row for ``name``: a redelivered command answers from it, without work."""
    row = await (await conn.execute(
        f"SELECT operation, checksum, command_id, action, duration_ms, attempts, status FROM {TABLE} "
        "WHERE command_id = %s AND operation = %s AND name = %s AND status = 'succeeded' ORDER BY id DESC LIMIT 1",
        (command_id, operation, name),
    )).fetchone()
    return Applied(*row) if row else None


async def built_by_run(conn: psycopg.AsyncConnection, run_id: str, name: str) -> bool:
    """Whether run ``run_id`` built the index of ``name`` (a revert drops only what its run built)."""
    row = await (await conn.execute(
        f"SELECT EXISTS (SELECT FROM {TABLE} WHERE run_id = %s AND name = %s AND operation = 'apply' "
        "AND status = 'succeeded' AND action IN ('built', 'rebuilt_invalid'))", (run_id, name),
    )).fetchone()
    return bool(row[0])


async def start(conn: psycopg.AsyncConnection, *, run_id: str, command_id: str, operation: str, name: str,
                statement: str, waivers: list[dict], applied_by: str) -> int:
    """A 'running' row; its id is finished with ``finish``."""
    row = await (await conn.execute(
        f"INSERT INTO {TABLE} (run_id, command_id, operation, name, statement, checksum, status, waivers, applied_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'running', %s, %s) RETURNING id",
        (run_id, command_id, operation, name, statement, checksum(statement), json.dumps(waivers), applied_by),
    )).fetchone()
    return row[0]


async def finish(conn: psycopg.AsyncConnection, row_id: int, *, status: str, action: str | None, attempts: int,
                 duration_ms: int, error: str | None = None, error_statement: str | None = None) -> None:
    await conn.execute(
        f"UPDATE {TABLE} SET status = %s, action = %s, attempts = %s, finished_at = now(), duration_ms = %s, "
        "error = %s, error_statement = %s WHERE id = %s",
        (status, action, attempts, duration_ms, error, error_statement, row_id),
    )


async def fail_abandoned(conn: psycopg.AsyncConnection) -> int:
    """Rows left 'running' by a migrator that died. Called holding the advisory lock: no other migrator
    runs, so every such row was abandoned. Returns how many."""
    cur = await conn.execute(
        f"UPDATE {TABLE} SET status = 'failed', finished_at = now(), "
        "error = 'abandoned: the migrator stopped mid-statement' WHERE status = 'running'"
    )
    return cur.rowcount


async def acquire_lock(conn: psycopg.AsyncConnection, stopping: asyncio.Event | None = None,
                       poll_s: float = 1.0, on_wait=None) -> bool:
    """Take the session-level advisory lock, waiting while another migrator holds it.

    False when ``stopping`` was set while waiting. ``on_wait(holder_pid)`` is awaited once per wait."""
    told = False
    while True:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))).fetchone()
        if row[0]:
            return True
        if not told and on_wait is not None:
            holder = await (await conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = %s LIMIT 1", (LOCK_KEY,),
            )).fetchone()
            await on_wait(holder[0] if holder else None)
            told = True
        if stopping is not None and stopping.is_set():
            return False
        await asyncio.sleep(poll_s)


async def release_lock(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
