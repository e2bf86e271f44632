"""Helpers of the migrator tests: a blocking transaction, event capture, what the database holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg

from golive.shared.envelope import Message


class Blocker:
    """A transaction held open with a snapshot on ``other_things`` (not on the table being indexed):
    CREATE INDEX CONCURRENTLY waits for it in 'waiting for old snapshots'."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, application_name="golive-test-blocker")
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self.conn.execute("SELECT count(*) FROM other_things").fetchone()
        self.pid = self.conn.info.backend_pid

    def end(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


class Recorder:
    """Collects what the migrator emits; tests wait on it without timing assertions."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self._changed = asyncio.Event()

    async def emit(self, data: Message) -> None:
        self.events.append(data)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Message], bool], timeout_s: float = 60.0) -> Message:
        async def first() -> Message:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout_s)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def index_rows(url: str, table: str = "big_events") -> list[tuple[str, bool, bool]]:
    """(name, valid, ready) of every index on ``table`` but its primary key."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT c.relname, i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY c.relname", (table,),
        ).fetchall()


def history_rows(url: str, name: str) -> list[tuple]:
    """(operation, status, action, attempts, error, error_statement) of ``name``, oldest first."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT operation, status, action, attempts, error, error_statement FROM golive_migrations "
            "WHERE name = %s ORDER BY id", (name,),
        ).fetchall()


async def build_pid(url: str) -> int:
    """The backend that builds an index on big_events, once the build has started."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(
                "SELECT pid FROM pg_stat_progress_create_index WHERE relid = 'big_events'::regclass")).fetchone()
            if row:
                return row[0]
            await asyncio.sleep(0.1)


async def terminate_build(url: str) -> None:
    """Terminate the backend that builds an index on big_events, once the build has started."""
    pid = await build_pid(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
