"""The pg_health probe: the runbook's database health gauges, sampled once per request.

- ``replica_lag_s``: on each replica, seconds since the last replayed transaction, or 0 when it has
  replayed all it received (an idle primary must not read as lag). Per replica: ``replica_lag_s:<ENV>``.
- ``wal_lag_bytes``: on the primary, pg_stat_replication's sent-but-not-replayed bytes per replica
  (``wal_lag_bytes:<application_name>``), the worst as ``wal_lag_bytes``.
- ``connection_use_pct``: client connections in pg_stat_activity against max_connections; with
  ``pgbouncer_admin_url_env``, the worst of that and every PgBouncer pool's use (pgbouncer.py, which also
  gives each pool's own gauge), so one limit guards the pool the application actually goes through.
- ``long_transactions``: client transactions open longer than ``long_transaction_s``.
"""

from __future__ import annotations

import asyncio

import psycopg
from psycopg import sql

from services.prober.kinds import CONNECTION, SQL, TIMEOUT, ProbeFailure, secret
from services.prober.pgbouncer import sample_pools
from services.prober.sql_probe import postgres_failure
from shared.plan.probes import PgHealthProbeSpec

PRIMARY_QUERY = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
       current_setting('max_connections')::int AS max_connections,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
           AND xact_start < now() - make_interval(secs => %s)) AS long_transactions
"""
WAL_LAG_QUERY = """
SELECT coalesce(nullif(application_name, ''), client_addr::text, pid::text),
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8
FROM pg_stat_replication
"""
REPLICA_LAG_QUERY = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time()))::float8
       END
"""
LAG_CONFIRM_S = 0.1
PGBOUNCER = ":pgbouncer"  # its connections' key (replicas are keyed by their variable, which has no colon)


class PgHealthTarget:
    """Health gauges of a primary and its replicas (see the module docstring)."""

    def __init__(self, spec: PgHealthProbeSpec, primary_url: str, replica_urls: dict[str, str],
                 pgbouncer_admin_url: str | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.shown = ""
        self._primary = primary_url
        self._replicas = replica_urls
        self._pgbouncer = pgbouncer_admin_url
        self._timeout_s = spec.timeout_ms / 1000
        self._connections: dict[tuple[int, str], psycopg.AsyncConnection] = {}

    @classmethod
    def from_spec(cls, spec: PgHealthProbeSpec, env: dict[str, str]) -> PgHealthTarget:
        primary = secret(env, spec.database_url_env, f"probe {spec.name}")
        replicas = {name: secret(env, name, f"probe {spec.name} replica") for name in spec.replica_url_envs}
        pgbouncer = (secret(env, spec.pgbouncer_admin_url_env, f"probe {spec.name} PgBouncer admin console")
                     if spec.pgbouncer_admin_url_env else None)
        return cls(spec, primary, replicas, pgbouncer)

    async def open(self, concurrency: int) -> None:
        self._connections = {}

    async def request(self, worker: int) -> dict[str, float]:
        gauges: dict[str, float] = {}
        primary = await self._query(worker, "", self._primary, self._sample_primary)
        gauges.update(primary)
        for env_name, url in self._replicas.items():
            lag = await self._query(worker, env_name, url, _replica_lag)
            if lag is None:
                raise ProbeFailure(SQL, f"replica {env_name} is not in recovery: it is not a replica")
            gauges[f"replica_lag_s:{env_name}"] = lag
            gauges["replica_lag_s"] = max(gauges.get("replica_lag_s", 0.0), lag)
        if self._pgbouncer is not None:
            pools = await self._query(worker, PGBOUNCER, self._pgbouncer, sample_pools)
            gauges.update(pools)
            if "pgbouncer_pool_use_pct" in pools:
                gauges["connection_use_pct"] = max(gauges["connection_use_pct"], pools["pgbouncer_pool_use_pct"])
        return gauges

    async def close(self) -> None:
        for key in list(self._connections):
            await self._drop(key)

    async def _sample_primary(self, conn: psycopg.AsyncConnection) -> dict[str, float]:
        cur = await conn.execute(PRIMARY_QUERY, (self.spec.long_transaction_s,))
        connections, max_connections, long_transactions = await cur.fetchone()
        gauges = {
            "connections": float(connections),
            "max_connections": float(max_connections),
            "connection_use_pct": round(100.0 * connections / max_connections, 3),
            "long_transactions": float(long_transactions),
        }
        cur = await conn.execute(WAL_LAG_QUERY)
        for name, lag in await cur.fetchall():
            gauges[f"wal_lag_bytes:{name}"] = lag
            gauges["wal_lag_bytes"] = max(gauges.get("wal_lag_bytes", 0.0), lag)
        return gauges

    async def _query(self, worker: int, which: str, url: str, sample):
        key = (worker, which)
        try:
            async with asyncio.timeout(self._timeout_s + 0.5):
                conn = self._connections.get(key)
                if conn is None or conn.closed:
                    conn = await self._connect(url, admin_console=which == PGBOUNCER)
                    self._connections[key] = conn
                return await sample(conn)
        except TimeoutError:
            await self._drop(key)
            raise ProbeFailure(TIMEOUT) from None
        except psycopg.Error as exc:
            failure = postgres_failure(exc, url)
            if failure.error_class == CONNECTION:
                await self._drop(key)
            raise failure from None

    async def _connect(self, url: str, admin_console: bool) -> psycopg.AsyncConnection:
        timeout = max(1, int(self._timeout_s + 0.999))
        if admin_console:  # PgBouncer's console: simple query protocol only, and no session settings to make
            return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=timeout,
                                                         cursor_factory=psycopg.AsyncClientCursor)
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=timeout)
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{self.spec.timeout_ms}ms")))
        await conn.execute("SET application_name = 'golive-prober-health'")
        return conn

    async def _drop(self, key: tuple[int, str]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                pass


async def _replica_lag(conn: psycopg.AsyncConnection) -> float | None:
    """Seconds the replica is behind: the age of the last replayed commit while WAL waits to be replayed.

    That age is only a lag while the WAL stays unreplayed: on a quiet primary the last commit may be minutes
    old when a checkpoint or vacuum record arrives, and for the milliseconds before it is replayed the formula
    reads "minutes behind" (seen in the demo: a false 10 s breach of the 8 s guard). So a lag is read twice,
    LAG_CONFIRM_S apart, and the second reading counts: WAL in flight is replayed by then, a real lag is not."""
    lag = await _lag_reading(conn)
    if lag:
        await asyncio.sleep(LAG_CONFIRM_S)
        lag = await _lag_reading(conn)
    return lag


async def _lag_reading(conn: psycopg.AsyncConnection) -> float | None:
    cur = await conn.execute(REPLICA_LAG_QUERY)
    (lag,) = await cur.fetchone()
    return None if lag is None else max(0.0, float(lag))
