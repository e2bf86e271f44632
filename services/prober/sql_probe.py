"""The sql probe: a named query run in a closed loop at a fixed concurrency for a duration.

Each worker holds its own autocommit connection; a query that writes runs in a transaction that is
always rolled back. Errors are classed (timeout, connection, sql) rather than hidden.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg import sql

from services.prober.stats import LatencyWindow
from shared.commands import SqlProbeSpec


class ProbeStopped(Exception):
    """The service is shutting down; the probe's result would be partial."""


async def run_sql_probe(
    spec: SqlProbeSpec, url: str, duration_s: float, concurrency: int, stopping: asyncio.Event
) -> LatencyWindow:
    """Measure ``spec.query`` for ``duration_s`` seconds with ``concurrency`` workers."""
    window = LatencyWindow()
    deadline = time.monotonic() + duration_s
    connections = [await _connect(url, spec) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(_worker(conn, spec, deadline, window, stopping) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()
    if stopping.is_set():
        raise ProbeStopped()
    return window


async def _connect(url: str, spec: SqlProbeSpec) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{spec.timeout_ms}ms")))
    await conn.execute("SET application_name = 'golive-prober'")
    return conn


async def _worker(
    conn: psycopg.AsyncConnection, spec: SqlProbeSpec, deadline: float, window: LatencyWindow, stopping: asyncio.Event
) -> None:
    params = tuple(spec.params) or None
    while time.monotonic() < deadline and not stopping.is_set():
        started = time.perf_counter()
        try:
            async with conn.transaction(force_rollback=True):
                cur = await conn.execute(spec.query, params)
                if cur.description is not None:
                    await cur.fetchall()
        except psycopg.errors.QueryCanceled:
            window.record_error("timeout")
            continue
        except psycopg.OperationalError:
            window.record_error("connection")
            await asyncio.sleep(0.1)
            continue
        except psycopg.Error:
            window.record_error("sql")
            continue
        window.record(time.perf_counter() - started)
