"""The sql probe against a real PostgreSQL: honest counts, classified errors, writes always rolled back."""

from __future__ import annotations

import asyncio

import psycopg

from services.prober.sql_probe import run_sql_probe
from services.prober.stats import judge
from shared.commands import SqlProbeSpec, Thresholds


def spec(query: str, timeout_ms: int = 2000, params: list | None = None) -> SqlProbeSpec:
    return SqlProbeSpec(name="q", database_url_env="UNUSED", query=query, timeout_ms=timeout_ms, params=params or [])


async def test_probe_measures_a_query_and_judges_its_p95(database_url):
    window = await run_sql_probe(spec("SELECT pg_sleep(0.02)"), database_url, 0.5, 2, asyncio.Event())
    verdicts, passed, summary = judge(window, Thresholds(p95_ms=10))
    assert 10 <= window.count <= 60  # two workers, ~20 ms each, for half a second
    assert window.percentile_ms(50) >= 20
    assert not passed and "p95" in summary and "> 10" in summary


async def test_probe_classifies_timeouts_and_sql_errors(database_url):
    slow = await run_sql_probe(spec("SELECT pg_sleep(1)", timeout_ms=50), database_url, 0.3, 1, asyncio.Event())
    broken = await run_sql_probe(spec("SELECT * FROM no_such_table"), database_url, 0.2, 1, asyncio.Event())
    assert slow.errors["timeout"] >= 1 and slow.count == 0
    assert broken.errors["sql"] >= 1 and broken.error_rate_pct() == 100.0


async def test_probe_that_writes_leaves_no_rows_behind(database_url):
    insert = spec("INSERT INTO stripe_events (stripe_id, type, created_at) VALUES (%s, 'probe', now())", params=["evt_probe"])
    window = await run_sql_probe(insert, database_url, 0.3, 1, asyncio.Event())
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM stripe_events WHERE type = 'probe'").fetchone()[0]
    assert window.count > 0 and window.error_count == 0
    assert left == 0
