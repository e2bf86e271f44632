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


async def open_session(url: str, session: MigrationSession) -> psycopg.AsyncConnection:
    """A dedicated autocommit connection with the plan's session settings (SET, not SET LOCAL)."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    await conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{session.lock_timeout_ms}ms")))
    await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{session.statement_timeout_ms}ms")))
    await conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(session.application_name)))
    return conn


async def index_state(conn: psycopg.AsyncConnection, index: str) -> tuple[bool, bool] | None:
    """(valid, ready) of an index, or None when it does not exist."""
    row = await (await conn.execute(_INDEX_STATE, (index,))).fetchone()
    return (bool(row[0]), bool(row[1])) if row else None


async def wait_until_not_building(conn: psycopg.AsyncConnection, index: str, poll_s: float = 0.5) -> None:
    """A build in progress also reads invalid: wait until nobody builds it before judging it."""
    while (await (await conn.execute(_BUILDING, (index,))).fetchone())[0]:
        await asyncio.sleep(poll_s)


async def apply(conn: psycopg.AsyncConnection, name: str, statement: Statement) -> IndexResult:
    """Run one statement idempotently: a valid index is skipped, an invalid one dropped and rebuilt."""
    started = time.perf_counter()
    action = "executed"
    if statement.kind == "create_index" and statement.index:
        state = await index_state(conn, statement.index)
        if state is not None:
            await wait_until_not_building(conn, statement.index)
            state = await index_state(conn, statement.index)
        if state == (True, True):
            return IndexResult(name=name, index=statement.index, action="already_present", seconds=0.0)
        if state is not None:
            await drop_index(conn, statement.index)
            action = "rebuilt_invalid"
        else:
            action = "built"
    await conn.execute(statement.sql.encode())  # bytes, no parameters: one simple-protocol statement
    if statement.kind == "create_index" and statement.index:
        if await index_state(conn, statement.index) != (True, True):
            raise RuntimeError(f"index {statement.index} is not valid and ready after its build")
    return IndexResult(name=name, index=statement.index, action=action, seconds=round(time.perf_counter() - started, 3))


async def drop_index(conn: psycopg.AsyncConnection, index: str) -> None:
    """DROP INDEX CONCURRENTLY IF EXISTS, with the name quoted as an identifier path."""
    ident = sql.Identifier(*index.split("."))
    await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident))
