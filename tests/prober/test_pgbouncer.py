"""PgBouncer pool use in the pg_health probe: (cl_active + cl_waiting) / pool_size per pool, from the admin
console's SHOW POOLS and SHOW DATABASES; the worst pool counts as connection use."""

from __future__ import annotations

import asyncio

import psycopg

from golive.services.prober.pgbouncer import pool_gauges
from golive.services.prober.run import run_probe
from golive.shared.commands import PgHealthProbeSpec, RunProbe, Thresholds
from tests.prober.conftest import DB_ENV

ADMIN_ENV = "PROBER_TEST_PGBOUNCER_ADMIN_URL"

# as PgBouncer 1.18 answers (columns trimmed to those read, plus a few others)
SHOW_POOLS = [
    {"database": "app", "user": "api", "cl_active": 12, "cl_waiting": 3, "sv_active": 10, "sv_idle": 0, "pool_mode": "transaction"},
    {"database": "app", "user": "worker", "cl_active": 2, "cl_waiting": 0, "sv_active": 1, "sv_idle": 1, "pool_mode": "transaction"},
    {"database": "reports", "user": "api", "cl_active": 1, "cl_waiting": 0, "sv_active": 0, "sv_idle": 1, "pool_mode": "session"},
    {"database": "pgbouncer", "user": "pgbouncer", "cl_active": 1, "cl_waiting": 0, "sv_active": 0, "sv_idle": 0, "pool_mode": "statement"},
]
SHOW_DATABASES = [
    {"name": "app", "host": "10.0.0.5", "port": 5432, "database": "app", "pool_size": 15, "pool_mode": None},
    {"name": "reports", "host": "10.0.0.5", "port": 5432, "database": "reports", "pool_size": 0, "pool_mode": "session"},
    {"name": "pgbouncer", "host": None, "port": 6432, "database": "pgbouncer", "pool_size": 2, "pool_mode": "statement"},
]


def test_pool_use_is_clients_served_or_queued_against_the_pool_size():
    gauges = pool_gauges(SHOW_POOLS, SHOW_DATABASES)
    assert gauges == {
        "pgbouncer_pool_use_pct:app/api": 100.0,  # (12 + 3) / 15
        "pgbouncer_pool_use_pct:app/worker": 13.333,
        "pgbouncer_pool_use_pct": 100.0,
        "pgbouncer_clients_waiting": 3.0,
    }  # reports has no pool size limit, the admin console is no pool of the application


async def test_pg_health_gauges_each_pgbouncer_pool_and_judges_the_fullest(database_url, pgbouncer):
    database = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    busy = [await psycopg.AsyncConnection.connect(pgbouncer.url(database), prepare_threshold=None)
            for _ in range(pgbouncer.pool_size)]
    waiting_client = await psycopg.AsyncConnection.connect(pgbouncer.url(database), autocommit=True, prepare_threshold=None)
    try:
        for conn in busy:  # each holds a server connection in an open transaction: the pool is full
            await conn.execute("SELECT 1")
        queued = asyncio.create_task(waiting_client.execute("SELECT 1"))  # waits for a server connection
        cmd = RunProbe(probe=PgHealthProbeSpec(name="db_health", database_url_env=DB_ENV, pgbouncer_admin_url_env=ADMIN_ENV),
                       duration_s=0.3, thresholds=Thresholds(connection_use_pct=80))
        result = await run_probe(cmd, {DB_ENV: database_url, ADMIN_ENV: pgbouncer.admin_url})
        assert not queued.done()
        for conn in busy:
            await conn.rollback()
        await asyncio.wait_for(queued, 10)  # served once a server connection came free
    finally:
        for conn in [*busy, waiting_client]:
            await conn.close()

    assert result.count > 0 and result.errors == 0
    assert result.gauges[f"pgbouncer_pool_use_pct:{database}/postgres"] == 125.0  # (4 active + 1 waiting) / 4
    assert result.gauges["pgbouncer_clients_waiting"] == 1
    assert result.gauges["connection_use_pct"] == 125.0
    assert not result.passed and "connection" in result.summary
