"""Running statements on Postgres: one at a time, alone, in autocommit, on a dedicated session.

The connection never holds a transaction open (CREATE INDEX CONCURRENTLY waits for every older
snapshot, including ours), and every statement is sent on its own, never batched or pipelined.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg import sql

from services.migrator.statements import Statement
from shared.commands import MigrationSession
from shared.events import IndexResult

_INDEX_STATE = """
SELECT i.indisvalid, i.indisready
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.oid = to_regclass(%s)
"""
_BUILDING = "SELECT count(*) FROM pg_stat_progress_create_index WHERE index_relid = to_regclass(%s)"
_BUILDING_ON = """
SELECT count(*) FROM pg_stat_progress_create_index
WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (cardinality(%s::text[]) = 0 OR relid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t))
"""
_INVALID_COPIES = """
SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND c.relname LIKE %s AND n.nspname = coalesce(%s, current_schema())
"""
CLIENT_CHECK_MS = 1000  # the server notices a dead migrator within a second and stops its build


async def open_session(url: str, session: MigrationSession) -> psycopg.AsyncConnection:
    """A dedicated autocommit connection with the plan's session settings (SET, not SET LOCAL)."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    try:
        await conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{session.lock_timeout_ms}ms")))
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{session.statement_timeout_ms}ms")))
        await conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(session.application_name)))
        # Without it a build whose migrator was SIGKILLed runs on to its end while the redelivered command waits.
        await conn.execute(sql.SQL("SET client_connection_check_interval = {}").format(sql.Literal(f"{CLIENT_CHECK_MS}ms")))
    except BaseException:
        await conn.close()
        raise
    return conn


async def index_state(conn: psycopg.AsyncConnection, index: str) -> tuple[bool, bool] | None:
    """(valid, ready) of an index, or None when it does not exist."""
    row = await (await conn.execute(_INDEX_STATE, (index,))).fetchone()
    return (bool(row[0]), bool(row[1])) if row else None


async def wait_until_not_building(conn: psycopg.AsyncConnection, index: str, poll_s: float = 0.5) -> None:
    """A build in progress also reads invalid: wait until nobody builds it before judging it."""
    while (await (await conn.execute(_BUILDING, (index,))).fetchone())[0]:
        await asyncio.sleep(poll_s)


async def wait_until_no_build_on(conn: psycopg.AsyncConnection, tables: tuple[str, ...], poll_s: float = 0.5) -> None:
    """VACUUM/ANALYZE never run on a table while an index builds on it (no tables: the whole database)."""
    names = list(tables)
    while (await (await conn.execute(_BUILDING_ON, (names, names))).fetchone())[0]:
        await asyncio.sleep(poll_s)


async def apply(conn: psycopg.AsyncConnection, name: str, statement: Statement) -> IndexResult:
    """Run one statement idempotently: a valid index is skipped, an invalid one dropped and rebuilt."""
    started = time.perf_counter()
    action = await prepare(conn, statement)
    if action == "already_present":
        return IndexResult(name=name, index=statement.index, action=action, seconds=0.0)
    await execute(conn, statement)
    await check_built(conn, statement)
    return IndexResult(name=name, index=statement.index, action=action, seconds=round(time.perf_counter() - started, 3))


async def prepare(conn: psycopg.AsyncConnection, statement: Statement) -> str:
    """Look the index up before building (never trust IF NOT EXISTS): already_present, built (absent) or
    rebuilt_invalid (an invalid one, dropped once nobody builds it any more). Other kinds: executed."""
    if statement.kind in ("vacuum", "analyze"):
        await wait_until_no_build_on(conn, statement.tables)
        return "executed"
    if statement.kind == "reindex" and statement.index:
        await drop_invalid_copies(conn, statement.index)
        return "executed"
    if statement.kind != "create_index" or not statement.index:
        return "executed"
    state = await index_state(conn, statement.index)
    if state is not None:
        await wait_until_not_building(conn, statement.index)
        state = await index_state(conn, statement.index)
    if state == (True, True):
        return "already_present"
    if state is not None:
        await drop_index(conn, statement.index)
        return "rebuilt_invalid"
    return "built"


async def execute(conn: psycopg.AsyncConnection, statement: Statement) -> None:
    """Send the statement alone: bytes and no parameters, so one simple-protocol query."""
    await conn.execute(statement.sql.encode())


async def check_built(conn: psycopg.AsyncConnection, statement: Statement) -> None:
    if statement.kind == "create_index" and statement.index:
        if await index_state(conn, statement.index) != (True, True):
            raise BuildInvalid(f"index {statement.index} is not valid and ready after its build")


class BuildInvalid(RuntimeError):
    """The build returned, yet the index is not valid and ready."""


async def drop_index(conn: psycopg.AsyncConnection, index: str) -> None:
    """DROP INDEX CONCURRENTLY IF EXISTS, with the name quoted as an identifier path."""
    ident = sql.Identifier(*index.split("."))
    await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident))


async def drop_invalid_leftover(conn: psycopg.AsyncConnection, statement: Statement) -> bool:
    """After a failed statement: drop what it left invalid (the index, or REINDEX's _ccnew copy). True if dropped."""
    if not statement.index:
        return False
    if statement.kind == "reindex":
        return await drop_invalid_copies(conn, statement.index)
    if statement.kind != "create_index":
        return False
    state = await index_state(conn, statement.index)
    if state is None:
        return False
    await wait_until_not_building(conn, statement.index)
    if await index_state(conn, statement.index) == (True, True):
        return False
    await drop_index(conn, statement.index)
    return True


async def drop_invalid_copies(conn: psycopg.AsyncConnection, index: str) -> bool:
    """REINDEX CONCURRENTLY leaves an invalid ``<index>_ccnew`` behind when it fails: drop those."""
    schema, _, relname = index.rpartition(".")
    rows = await (await conn.execute(_INVALID_COPIES, (f"{relname}_ccnew%", schema or None))).fetchall()
    for nspname, copy in rows:
        await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(nspname, copy)))
    return bool(rows)
