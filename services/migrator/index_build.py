"""Running statements on Postgres: one at a time, alone, in autocommit, on a dedicated session.

The connection never holds a transaction open (CREATE INDEX CONCURRENTLY waits for every older
snapshot, including ours), and every statement is sent on its own with the extended query protocol, where
PostgreSQL itself refuses a string of several commands. Indexes are found by their exact catalog names
(pg_class and pg_namespace, names as parameters), dropped by the schema and name the catalog holds, and every
build and drop is read back from pg_index before it is reported.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psycopg
from pglast import ast
from psycopg import sql

from golive.services.migrator.statements import Name, Statement, index_definition
from golive.shared.commands import MigrationSession
from golive.shared.events import IndexResult

# The index named %(name)s in a schema: the one named, else the one its table resolves to (an index lives
# in its table's schema), else the one the search_path resolves the index itself to.
_FIND = """
SELECT c.oid, n.nspname, c.relname, i.indisvalid, i.indisready, i.indrelid, pg_get_indexdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relname = %(name)s AND n.oid = CASE
    WHEN %(schema)s::text IS NOT NULL THEN (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
    WHEN %(table)s::text IS NOT NULL THEN (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(%(table)s))
    ELSE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(%(quoted)s)) END
"""
_TABLE_OID = "SELECT to_regclass(%s)::oid"
_BUILDING = "SELECT count(*) FROM pg_stat_progress_create_index WHERE index_relid = %s"
_BUILDING_ON = """
SELECT count(*) FROM pg_stat_progress_create_index
WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (cardinality(%s::text[]) = 0 OR relid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t))
"""
_INVALID_COPIES = """
SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = %s AND starts_with(c.relname, %s)
"""
CLIENT_CHECK_MS = 1000  # the server notices a dead migrator within a second and stops its build
SHADOW = "golive_shadow"


@dataclass(frozen=True)
class IndexRow:
    """An index as pg_index holds it now."""

    oid: int
    schema: str
    name: str
    valid: bool
    ready: bool
    table_oid: int
    definition: str

    @property
    def usable(self) -> bool:
        return self.valid and self.ready


async def open_session(url: str, session: MigrationSession) -> psycopg.AsyncConnection:
    """A dedicated autocommit connection with the plan's session settings (SET, not SET LOCAL)."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    try:
        await conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{session.lock_timeout_ms}ms")))
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{session.statement_timeout_ms}ms")))
        await conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(session.application_name)))
        # Without it a build whose migrator was SIGKILLed runs on to its end while the redelivered command waits.
        await conn.execute(sql.SQL("SET client_connection_check_interval = {}").format(sql.Literal(f"{CLIENT_CHECK_MS}ms")))
        # The lint read the statement as libpg_query does, with standard strings: the server must read it the same.
        await conn.execute("SET standard_conforming_strings = on")
    except BaseException:
        await conn.close()
        raise
    return conn


async def find_index(conn: psycopg.AsyncConnection, index: Name, table: Name | None = None) -> IndexRow | None:
    """The index by its exact catalog name, or None. Unqualified: in ``table``'s schema when given (where
    CREATE INDEX puts it), else where the search_path finds it."""
    params = {"name": index.name, "schema": index.schema, "quoted": index.regclass(),
              "table": table.regclass() if table and not index.schema else None}
    row = await (await conn.execute(_FIND, params)).fetchone()
    return IndexRow(*row) if row else None


async def index_state(conn: psycopg.AsyncConnection, statement: Statement) -> tuple[bool, bool] | None:
    """(valid, ready) of the statement's index, or None when it does not exist."""
    row = await _find(conn, statement)
    return (row.valid, row.ready) if row else None


async def _find(conn: psycopg.AsyncConnection, statement: Statement) -> IndexRow | None:
    assert statement.index_name is not None
    return await find_index(conn, statement.index_name, statement.table)


async def wait_until_not_building(conn: psycopg.AsyncConnection, oid: int, poll_s: float = 0.5) -> None:
    """A build in progress also reads invalid: wait until nobody builds it before judging it."""
    while (await (await conn.execute(_BUILDING, (oid,))).fetchone())[0]:
        await asyncio.sleep(poll_s)


async def wait_until_no_build_on(conn: psycopg.AsyncConnection, tables: tuple[Name, ...], poll_s: float = 0.5) -> None:
    """VACUUM/ANALYZE never run on a table while an index builds on it (no tables: the whole database)."""
    names = [t.regclass() for t in tables]
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
    """Look the index up before building (never trust IF NOT EXISTS): already_present (valid, ready and the
    plan's definition), built (absent) or rebuilt_invalid (an invalid one, dropped once nobody builds it any
    more). Other kinds: executed. A valid index of that name with another definition: DefinitionMismatch."""
    if statement.kind in ("vacuum", "analyze"):
        await wait_until_no_build_on(conn, statement.table_names)
        return "executed"
    if statement.kind == "reindex" and statement.index_name:
        await drop_invalid_copies(conn, statement)
        return "executed"
    if statement.kind != "create_index" or not statement.index_name:
        return "executed"
    row = await _find(conn, statement)
    if row is not None:
        await wait_until_not_building(conn, row.oid)
        row = await _find(conn, statement)
    if row is not None and row.usable:
        await check_same_definition(conn, statement, row)
        return "already_present"
    if row is not None:
        await drop_index(conn, row)
        return "rebuilt_invalid"
    return "built"


async def execute(conn: psycopg.AsyncConnection, statement: Statement) -> None:
    """Send the statement alone with the extended query protocol (binary results need it): PostgreSQL
    refuses a string of several commands there ("cannot insert multiple commands into a prepared
    statement"), so nothing but the one statement the lint read can ever run."""
    async with conn.cursor() as cur:
        await cur.execute(statement.sql.encode(), binary=True, prepare=False)  # unnamed: nothing kept server-side


async def check_built(conn: psycopg.AsyncConnection, statement: Statement) -> None:
    """After a build: the index must read valid and ready in pg_index, or BuildInvalid."""
    if statement.kind == "create_index" and statement.index_name:
        row = await _find(conn, statement)
        if row is None or not row.usable:
            state = "missing" if row is None else f"indisvalid={row.valid}, indisready={row.ready}"
            raise BuildInvalid(f"index {statement.index} is not valid and ready after its build ({state})")


class BuildInvalid(RuntimeError):
    """The build returned, yet the index is not valid and ready."""


class DropFailed(RuntimeError):
    """DROP INDEX returned, yet the index is still there."""


class DefinitionMismatch(RuntimeError):
    """A valid index has the plan's name but another definition: it is not the plan's index."""


async def drop_index(conn: psycopg.AsyncConnection, row: IndexRow) -> None:
    """DROP INDEX CONCURRENTLY IF EXISTS by the schema and name the catalog holds, then read pg_index back:
    DropFailed unless the index is gone."""
    await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(row.schema, row.name)))
    if await find_index(conn, Name(row.name, row.schema)) is not None:
        raise DropFailed(f"index {Name(row.name, row.schema)} is still there after DROP INDEX")


async def drop_statement_index(conn: psycopg.AsyncConnection, statement: Statement) -> bool:
    """Drop the statement's index if it exists (verified gone). True if there was one to drop."""
    row = await _find(conn, statement)
    if row is None:
        return False
    await drop_index(conn, row)
    return True


async def drop_invalid_leftover(conn: psycopg.AsyncConnection, statement: Statement) -> bool:
    """After a failed statement: drop what it left invalid (the index, or REINDEX's _ccnew copy). True if dropped."""
    if not statement.index_name:
        return False
    if statement.kind == "reindex":
        return await drop_invalid_copies(conn, statement)
    if statement.kind != "create_index":
        return False
    row = await _find(conn, statement)
    if row is None:
        return False
    await wait_until_not_building(conn, row.oid)
    row = await _find(conn, statement)
    if row is None or row.usable:
        return False
    await drop_index(conn, row)
    return True


async def drop_invalid_copies(conn: psycopg.AsyncConnection, statement: Statement) -> bool:
    """REINDEX CONCURRENTLY leaves an invalid ``<index>_ccnew`` behind when it fails: drop those (in the
    reindexed index's schema, by exact prefix: no LIKE, whose _ would match any character)."""
    row = await _find(conn, statement)
    if row is None:
        return False
    copies = await (await conn.execute(_INVALID_COPIES, (row.schema, f"{row.name}_ccnew"))).fetchall()
    for schema, copy in copies:
        await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, copy)))
    return bool(copies)


# --- is the index there the plan's index? ---------------------------------------------------------------


async def check_same_definition(conn: psycopg.AsyncConnection, statement: Statement, row: IndexRow) -> None:
    """DefinitionMismatch unless ``row`` is on the statement's table with the statement's definition.

    Both sides are compared through the parse tree (whitespace, case, quoting, CONCURRENTLY do not count).
    When they still differ, PostgreSQL says what the plan's definition becomes (casts, parentheses) by
    building it on an empty copy of the table in a transaction rolled back, and that is compared."""
    table_oid = (await (await conn.execute(_TABLE_OID, (statement.table.regclass(),))).fetchone())[0]
    existing = _canonical(row.definition)
    if table_oid != row.table_oid:
        raise DefinitionMismatch(f"index {statement.index} exists on another table: {row.definition} "
                                 f"(the plan: {statement.sql})")
    if existing is not None and _canonical(statement.tree) == existing:
        return
    if existing is not None and await _as_postgresql_defines_it(conn, statement) == existing:
        return
    raise DefinitionMismatch(f"index {statement.index} exists with another definition: {row.definition} "
                             f"(the plan: {statement.sql}); give the plan's index another name, or drop this one")


def _canonical(definition: str | ast.IndexStmt) -> str | None:
    """index_definition, or None when it cannot be had (then the definitions are taken to differ)."""
    try:
        return index_definition(definition)
    except Exception:  # noqa: BLE001 - a text pglast cannot read or print: no match is claimed, both texts are shown
        return None


async def _as_postgresql_defines_it(conn: psycopg.AsyncConnection, statement: Statement) -> str | None:
    """The plan's index definition as pg_get_indexdef prints it, canonical; None when it cannot be had."""
    shadow = index_definition(statement.tree, table=Name(SHADOW, "pg_temp"), name=f"{SHADOW}_idx")
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                sql.Identifier(SHADOW), sql.Identifier(*statement.table.parts())))
            async with conn.cursor() as cur:
                await cur.execute(shadow.encode(), binary=True, prepare=False)  # one statement, from the parse tree
            row = await (await conn.execute("SELECT pg_get_indexdef(%s::regclass)",
                                            (f"pg_temp.{SHADOW}_idx",))).fetchone()
    except psycopg.Error:
        return None  # no TEMP privilege, say: the texts differ, so the indexes are taken to differ
    return _canonical(row[0])
