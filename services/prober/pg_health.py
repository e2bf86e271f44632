"""The pg_health probe: the runbook's database health gauges, sampled once per request.

- ``replica_lag_s``: per replica (``replica_lag_s:<ENV>``) and the worst, its replay delay: how long WAL the
  primary has written has waited for the replica to replay it, 0 when it has replayed everything
  (services/prober/replay_lag.py: the primary's ``pg_current_wal_lsn()`` against the replica's
  ``pg_last_wal_replay_lsn()``; an idle primary is no lag, however old its last commit).
- ``wal_lag_bytes``: on the primary, pg_stat_replication's sent-but-not-replayed bytes per replica
  (``wal_lag_bytes:<application_name>``), the worst as ``wal_lag_bytes``.
- ``connection_use_pct``: client connections in pg_stat_activity against max_connections; with
  ``pgbouncer_admin_url_env``, the worst of that and every PgBouncer pool's use (pgbouncer.py, which also
  gives each pool's own gauge), so one limit guards the pool the application actually goes through.
- ``long_transactions``: client transactions open longer than ``long_transaction_s``.

A gauge that cannot be read is reported unread with why (kinds.Gauges), never as a number: a replica down
leaves its lag unread and the primary's gauges read; the primary down leaves all of them unread (a replica's
lag is measured against the primary's position); a role without pg_monitor (pg_read_all_stats) sees only its
own sessions in pg_stat_activity and no positions in pg_stat_replication, so connection use, long transactions
and WAL lag are unread rather than counted low. A sample that could not read everything still counts as a
failed request of its error class.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg import sql

from golive.services.prober.kinds import CONNECTION, SQL, TIMEOUT, Gauges, ProbeFailure, secret
from golive.services.prober.pgbouncer import sample_pools
from golive.services.prober.replay_lag import ReplayLag
from golive.services.prober.sql_probe import postgres_failure
from golive.shared.plan.probes import PgHealthProbeSpec

PRIMARY_QUERY = """
SELECT pg_has_role('pg_read_all_stats', 'USAGE') AS sees_all, current_user,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
       current_setting('max_connections')::int AS max_connections,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
           AND xact_start < now() - make_interval(secs => %s)) AS long_transactions,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS wal_position
"""
WAL_LAG_QUERY = """
SELECT coalesce(nullif(application_name, ''), client_addr::text, pid::text),
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8
FROM pg_stat_replication
"""
REPLAY_POSITION_QUERY = """
SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::float8
"""
PGBOUNCER = ":pgbouncer"  # its connections' key (replicas are keyed by their variable, which has no colon)
PRIMARY_GAUGES = ("connection_use_pct", "long_transactions", "wal_lag_bytes")
NEEDS_ALL_SESSIONS = PRIMARY_GAUGES  # what a role without pg_read_all_stats cannot read
MAX_REASON = 200


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
        self._replay = ReplayLag(len(replica_urls))

    @classmethod
    def from_spec(cls, spec: PgHealthProbeSpec, env: dict[str, str]) -> PgHealthTarget:
        primary = secret(env, spec.database_url_env, f"probe {spec.name}")
        replicas = {name: secret(env, name, f"probe {spec.name} replica") for name in spec.replica_url_envs}
        pgbouncer = (secret(env, spec.pgbouncer_admin_url_env, f"probe {spec.name} PgBouncer admin console")
                     if spec.pgbouncer_admin_url_env else None)
        return cls(spec, primary, replicas, pgbouncer)

    async def open(self, concurrency: int) -> None:
        self._connections = {}

    async def request(self, worker: int) -> Gauges:
        gauges = Gauges()
        failures: list[ProbeFailure] = []
        try:
            gauges.update(await self._query(worker, "", self._primary, lambda conn: self._sample_primary(conn, gauges)))
        except ProbeFailure as failure:
            failures.append(failure)
            unread = (*PRIMARY_GAUGES, *(("replica_lag_s",) if self._replicas else ()))
            gauges.unread.update(dict.fromkeys(unread, _why("primary", failure)))
        if not failures:  # a replica's lag is measured against the primary's position: none without it
            for env_name, url in self._replicas.items():
                try:
                    replayed = await self._query(worker, env_name, url, _replay_position)
                except ProbeFailure as failure:
                    failures.append(failure)
                    gauges.unread["replica_lag_s"] = _why(f"replica {env_name}", failure)
                    continue
                lag = round(self._replay.lag_s(env_name, replayed, time.monotonic()), 3)
                gauges[f"replica_lag_s:{env_name}"] = lag
                gauges["replica_lag_s"] = max(gauges.get("replica_lag_s", 0.0), lag)
        if self._pgbouncer is not None:
            try:
                pools = await self._query(worker, PGBOUNCER, self._pgbouncer, sample_pools)
            except ProbeFailure as failure:
                failures.append(failure)
                gauges.unread["connection_use_pct"] = _why("PgBouncer", failure)
            else:
                gauges.update(pools)
                if "pgbouncer_pool_use_pct" in pools:
                    gauges["connection_use_pct"] = max(gauges.get("connection_use_pct", 0.0),
                                                       pools["pgbouncer_pool_use_pct"])
        if failures:
            raise ProbeFailure(failures[0].error_class, str(failures[0]).partition(": ")[2], gauges=gauges)
        return gauges

    async def close(self) -> None:
        for key in list(self._connections):
            await self._drop(key)

    async def _sample_primary(self, conn: psycopg.AsyncConnection, gauges: Gauges) -> dict[str, float]:
        cur = await conn.execute(PRIMARY_QUERY, (self.spec.long_transaction_s,))
        sees_all, user, connections, max_connections, long_transactions, position = await cur.fetchone()
        self._replay.primary_at(position, time.monotonic())
        if not sees_all:
            why = (f"role {user} sees only its own sessions in pg_stat_activity and no replay positions in "
                   f"pg_stat_replication: grant it pg_monitor (or pg_read_all_stats)")
            gauges.unread.update(dict.fromkeys(NEEDS_ALL_SESSIONS, why))
            return {}
        read = {
            "connections": float(connections),
            "max_connections": float(max_connections),
            "connection_use_pct": round(100.0 * connections / max_connections, 3),
            "long_transactions": float(long_transactions),
        }
        cur = await conn.execute(WAL_LAG_QUERY)
        streaming = 0
        for name, lag in await cur.fetchall():
            if lag is None:  # connected, not yet reporting what it replayed
                gauges.unread["wal_lag_bytes"] = f"replica {name} has not reported a replay position yet"
                continue
            streaming += 1
            read[f"wal_lag_bytes:{name}"] = lag
            read["wal_lag_bytes"] = max(read.get("wal_lag_bytes", 0.0), lag)
        if streaming < len(self._replicas):
            gauges.unread["wal_lag_bytes"] = (f"pg_stat_replication shows {streaming} of the {len(self._replicas)} "
                                              "replicas the probe watches streaming from the primary")
        return read

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


async def _replay_position(conn: psycopg.AsyncConnection) -> float:
    """The replica's replay position in bytes; ProbeFailure when the server is not a replica or has replayed nothing."""
    cur = await conn.execute(REPLAY_POSITION_QUERY)
    in_recovery, replayed = await cur.fetchone()
    if not in_recovery:
        raise ProbeFailure(SQL, "not in recovery: it is not a replica")
    if replayed is None:
        raise ProbeFailure(SQL, "has not replayed any WAL yet")
    return float(replayed)


def _why(source: str, failure: ProbeFailure) -> str:
    """``source: error class: first line of the detail``, short enough for a verdict's words."""
    first_line = str(failure).splitlines()[0] if str(failure) else failure.error_class
    text = f"{source}: {first_line}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
