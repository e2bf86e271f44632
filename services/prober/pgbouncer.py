"""PgBouncer pool use, read from its admin console (the runbook's "Database Connection Pool: <80% utilization").

A pool (one database and user) serves at most ``pool_size`` server connections; its use is the clients
being served or queued for one against that size: (cl_active + cl_waiting) / pool_size, in percent. Above
100, clients wait. ``pool_size`` is per database (SHOW DATABASES); SHOW POOLS has the clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psycopg

ADMIN_DATABASE = "pgbouncer"  # the admin console's own pseudo-database: not a pool of the application


def pool_gauges(pools: Iterable[Mapping[str, object]], databases: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """Gauges from SHOW POOLS and SHOW DATABASES rows (column name to value): per pool
    ``pgbouncer_pool_use_pct:<database>/<user>``, the worst as ``pgbouncer_pool_use_pct``, and the clients
    waiting for a server connection in all pools as ``pgbouncer_clients_waiting``."""
    sizes = {str(row["name"]): int(row["pool_size"] or 0) for row in databases}
    gauges: dict[str, float] = {"pgbouncer_clients_waiting": 0.0}
    for row in pools:
        database = str(row["database"])
        if database == ADMIN_DATABASE:
            continue
        waiting = int(row["cl_waiting"] or 0)
        gauges["pgbouncer_clients_waiting"] += waiting
        size = sizes.get(database, 0)
        if size <= 0:  # a pool without a size limit (or a database gone since SHOW POOLS) has no use to speak of
            continue
        use = round(100.0 * (int(row["cl_active"] or 0) + waiting) / size, 3)
        gauges[f"pgbouncer_pool_use_pct:{database}/{row['user']}"] = use
        gauges["pgbouncer_pool_use_pct"] = max(gauges.get("pgbouncer_pool_use_pct", 0.0), use)
    return gauges


async def sample_pools(conn: psycopg.AsyncConnection) -> dict[str, float]:
    """``pool_gauges`` of the PgBouncer whose admin console ``conn`` is connected to (a ClientCursor
    connection: the console speaks only the simple query protocol)."""
    return pool_gauges(await _rows(conn, "SHOW POOLS"), await _rows(conn, "SHOW DATABASES"))


async def _rows(conn: psycopg.AsyncConnection, command: str) -> list[dict[str, object]]:
    cur = await conn.execute(command)
    names = [column.name for column in cur.description or []]
    return [dict(zip(names, row)) for row in await cur.fetchall()]
