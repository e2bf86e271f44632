"""The migrations history (table golive_migrations), who owns an index, and the one-migrator-per-database lock.

Rows are written in autocommit on the session connection between statements, never during a build, so
the history holds no transaction a build would wait for. The lock is a session-level advisory lock
(not a transaction-level one: a transaction held open would make our own build wait for it).

Ownership: the run that starts a build owns the index, whatever its migrator saw of the build's end. A row's
``owns_index`` is set and committed before CREATE INDEX is sent (``claim``), and cleared only when PostgreSQL
answered the build with an error (``release``: the build left nothing valid). An index belongs to the run of
its name's latest claim, unless a revert dropped it since; a revert drops a valid index only for its owner.
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
    applied_by text NOT NULL,
    owns_index boolean NOT NULL DEFAULT false
)
"""
_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_name ON {TABLE} (name, id)"
_HAS_OWNS_INDEX = f"""
SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('{TABLE}') AND attname = 'owns_index'
               AND NOT attisdropped)
"""
# A table written before owns_index: its runs owned what they reported built (they recorded nothing earlier).
_ADD_OWNS_INDEX = (
    f"ALTER TABLE {TABLE} ADD COLUMN owns_index boolean NOT NULL DEFAULT false",
    (f"UPDATE {TABLE} SET owns_index = true WHERE operation = 'apply' AND status = 'succeeded' "
     "AND action IN ('built', 'rebuilt_invalid')"),
)
# The run whose claim on the name is the latest, or a revert's drop since (then owns_index is false).
_OWNER = f"""
SELECT run_id, status = 'succeeded', owns_index FROM {TABLE}
WHERE name = %s AND (owns_index OR (operation = 'revert' AND status = 'succeeded' AND action = 'dropped'))
ORDER BY id DESC LIMIT 1
"""


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
    """Create the history table once, or add owns_index to an earlier version's (under the advisory lock, so
    two migrators never race here; the ALTER only when the column is missing, as it locks the table)."""
    exists = await (await conn.execute("SELECT to_regclass(%s)", (TABLE,))).fetchone()
    if not (exists and exists[0]):
        await conn.execute(_CREATE)
        await conn.execute(_INDEX)
        return
    if not (await (await conn.execute(_HAS_OWNS_INDEX)).fetchone())[0]:
        async with conn.transaction():  # the column and its backfill together, or neither
            for step in _ADD_OWNS_INDEX:
                await conn.execute(step)


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


@dataclass(frozen=True)
class Owner:
    """The run that owns an index, and whether the end of its build was recorded (its claiming row succeeded:
    a command answered it); unrecorded, the migrator died, or lost the server's reply, after sending it."""

    run_id: str
    recorded: bool


async def owner(conn: psycopg.AsyncConnection, name: str) -> Owner | None:
    """Who owns the index of ``name``: the run of its latest claim; None when a revert dropped it since or no
    run ever started its build (it was there before, or another session built it)."""
    row = await (await conn.execute(_OWNER, (name,))).fetchone()
    return Owner(row[0], row[1]) if row and row[2] else None


async def claim(conn: psycopg.AsyncConnection, row_id: int) -> None:
    """Row ``row_id``'s run owns the index from now on: committed before its build is sent, so a migrator that
    dies at any later moment leaves the ownership behind."""
    await conn.execute(f"UPDATE {TABLE} SET owns_index = true WHERE id = %s", (row_id,))


async def release(conn: psycopg.AsyncConnection, row_id: int) -> None:
    """PostgreSQL answered the row's build with an error: the build left nothing valid, the run owns nothing."""
    await conn.execute(f"UPDATE {TABLE} SET owns_index = false WHERE id = %s", (row_id,))


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
        f"UPDATE {TABLE} SET status = 'failed', finished_at = now(), error = CASE WHEN owns_index "
        "THEN 'abandoned: the migrator stopped after sending its build; the index is this run''s' "
        "ELSE 'abandoned: the migrator stopped mid-statement' END WHERE status = 'running'"
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
