"""The prober when PostgreSQL misbehaves: a restart mid-run, and a streaming replica whose replay is paused
(a replica made with pg_basebackup from the embedded server's own binaries)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from golive.services.prober.run import run_probe
from golive.shared.commands import LoadSpec, PgHealthProbeSpec, RunProbe, Thresholds
from golive.shared.events import ProbeWindow
from golive.stack.postgres import PG_SYSTEM_USER, EmbeddedPostgres, postgres_bin_dir
from tests.prober.conftest import DB_ENV, sql_command

REPLICA_ENV = "PROBER_TEST_REPLICA_URL"


async def test_postgres_restarted_mid_run_costs_errors_not_the_probe(own_postgres):
    windows: list[ProbeWindow] = []

    async def collect(window: ProbeWindow) -> None:
        windows.append(window)

    async def restart_later() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(0.5)  # down for a moment: requests due now must fail, not wait
        await asyncio.to_thread(own_postgres.start)

    cmd = sql_command("SELECT 1", duration_s=6.0, concurrency=2, load=LoadSpec(mode="open", rate=50),
                      timeout_ms=500).model_copy(update={"window_s": 1.0})
    result, _ = await asyncio.gather(run_probe(cmd, {DB_ENV: own_postgres.url}, publish_window=collect), restart_later())

    assert result.errors_by_class.get("connection", 0) >= 1, result.errors_by_class
    assert set(result.errors_by_class) <= {"connection", "timeout", "unsent"}, result.errors_by_class
    assert [w.index for w in windows] == [0, 1, 2, 3, 4, 5]  # windows kept coming through the restart
    assert windows[-1].stats.count >= 40 and windows[-1].stats.errors == 0  # and the probe reconnected
    assert result.count + result.errors + result.overloaded >= 0.95 * 300  # on schedule: every due request sent or counted


@pytest.fixture
def paused_replica(own_postgres):
    """A streaming replica of ``own_postgres`` made with the wheel's pg_basebackup (-R: it starts as a standby
    of the primary), started; the test pauses its replay."""
    data_dir = Path(tempfile.mkdtemp(prefix="golive-prober-replica-"))
    run_as = None
    if os.geteuid() == 0:  # as root, the servers run as the embedded server's system user: so does its backup
        run_as = PG_SYSTEM_USER
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    replica = EmbeddedPostgres(data_dir)
    try:
        subprocess.run([str(postgres_bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(own_postgres.port),
                        "-U", "postgres", "-D", str(data_dir / "pgdata"), "-R", "-X", "stream", "-c", "fast"],
                       check=True, capture_output=True, timeout=120, user=run_as, cwd=data_dir)
        with open(data_dir / "pgdata" / "postgresql.auto.conf", "a") as conf:  # name it, for pg_stat_replication
            conf.write(f"primary_conninfo = 'host=127.0.0.1 port={own_postgres.port} user=postgres application_name=replica1'\n")
        replica.start()
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_paused_replica_lag_grows_past_its_threshold_and_wal_lag_bytes_are_reported(own_postgres, paused_replica):
    with psycopg.connect(own_postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ticks (n int)")
        conn.execute("INSERT INTO ticks VALUES (0)")
    with psycopg.connect(paused_replica.url, autocommit=True) as conn:
        for _ in range(100):  # the replica has replayed the first write: its lag starts near zero
            if conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'ticks'").fetchone()[0]:
                break
            await asyncio.sleep(0.1)
        conn.execute("SELECT pg_wal_replay_pause()")

    writing = threading.Event()

    def keep_writing() -> None:  # the primary keeps committing, so there is WAL the replica does not replay
        with psycopg.connect(own_postgres.url, autocommit=True) as conn:
            while not writing.is_set():
                conn.execute("INSERT INTO ticks SELECT g FROM generate_series(1, 1000) g")
                writing.wait(0.05)

    windows: list[ProbeWindow] = []

    async def collect(window: ProbeWindow) -> None:
        windows.append(window)

    cmd = RunProbe(
        probe=PgHealthProbeSpec(name="db_health", database_url_env=DB_ENV, replica_url_envs=[REPLICA_ENV]),
        duration_s=3.5, load=LoadSpec(mode="open", rate=4), window_s=1.0,
        thresholds=Thresholds(replica_lag_s=2.0, wal_lag_bytes=100 * 1024 * 1024, connection_use_pct=80),
    )
    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = await run_probe(cmd, {DB_ENV: own_postgres.url, REPLICA_ENV: paused_replica.url}, publish_window=collect)
    finally:
        writing.set()
        writer.join()

    assert result.errors == 0, result.errors_by_class
    lags = [w.stats.gauges["replica_lag_s"] for w in windows]
    assert lags == sorted(lags) and lags[0] < 2.0 < lags[-1], lags  # grows, and crosses its threshold
    verdicts = {v.metric: v for v in result.verdicts}
    assert not verdicts["replica_lag_s"].passed and verdicts["replica_lag_s"].observed > 2.0
    assert verdicts["connection_use_pct"].passed and 0 < verdicts["connection_use_pct"].observed < 80
    assert result.gauges["wal_lag_bytes:replica1"] > 0 and result.gauges["wal_lag_bytes"] > 0
    assert verdicts["wal_lag_bytes"].passed
    assert not result.passed and "replica lag" in result.summary


async def test_a_replica_url_that_is_not_a_replica_is_reported_not_read_as_zero_lag(own_postgres):
    cmd = RunProbe(probe=PgHealthProbeSpec(name="db_health", database_url_env=DB_ENV, replica_url_envs=[REPLICA_ENV]),
                   duration_s=0.3, thresholds=Thresholds(replica_lag_s=8))
    result = await run_probe(cmd, {DB_ENV: own_postgres.url, REPLICA_ENV: own_postgres.url})
    assert result.count == 0 and result.errors_by_class.get("sql", 0) >= 1
    assert result.verdict == "inconclusive", result.summary
    assert f"replica lag unread (replica {REPLICA_ENV}: sql: not in recovery" in result.summary, result.summary


async def test_a_frozen_database_backend_is_a_timeout_on_the_client_and_the_probe_goes_on(own_postgres):
    """statement_timeout cannot fire in a backend that is not running: the client's own deadline must."""
    frozen: list[int] = []

    def freeze_the_probes_backends() -> None:
        with psycopg.connect(own_postgres.url, autocommit=True) as conn:
            pids = [pid for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'golive-prober'").fetchall()]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)

    async def freeze_later() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(freeze_the_probes_backends)

    # 4 s: the freeze, 0.5 s in, must land inside the run even when a loaded machine delays it
    cmd = sql_command("SELECT 1", duration_s=2.0, concurrency=2, timeout_ms=200)
    try:
        result, _ = await asyncio.gather(run_probe(cmd, {DB_ENV: own_postgres.url}), freeze_later())
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert len(frozen) == 2
    assert result.errors_by_class == {"timeout": 2}, result.errors_by_class  # one per frozen connection
    assert result.count > 0 and result.duration_s <= 4.0  # new connections carried on, the run kept its length
