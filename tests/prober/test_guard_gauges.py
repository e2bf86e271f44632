"""The guard gauges measure what they name (issue 16, item 4), on a real primary and its streaming replica.

- Replica lag is how long WAL the primary has written has waited for the replica to replay it: 0 when the
  replica has replayed everything, however long ago the primary last committed.
- A gauge that cannot be read (a replica down, a role that may not see other sessions) is inconclusive, never a
  pass and never a breach; what could be read is still judged.
"""

from __future__ import annotations

import asyncio

import psycopg

from golive.services.prober.run import run_probe
from golive.shared.commands import LoadSpec, PgHealthProbeSpec, RunProbe, Thresholds
from golive.stack.process import free_port
from tests.prober.conftest import DB_ENV, replayed_everything, wait_until

REPLICA_ENV = "PROBER_TEST_REPLICA_URL"
LIMIT_S = 2.0


def health(thresholds: Thresholds, *, replicas: bool = True, duration_s: float = 1.0) -> RunProbe:
    return RunProbe(probe=PgHealthProbeSpec(name="db_health", database_url_env=DB_ENV,
                                            replica_url_envs=[REPLICA_ENV] if replicas else []),
                    duration_s=duration_s, load=LoadSpec(mode="open", rate=5), thresholds=thresholds)


def commit_and_wait_for_replay(primary_url: str, replica_url: str) -> None:
    with psycopg.connect(primary_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS guard_ticks (n int)")
        conn.execute("INSERT INTO guard_ticks VALUES (1)")
    wait_until(lambda: replayed_everything(primary_url, replica_url), 30, "the replica replaying the primary's WAL")


def received_more_than_replayed(replica_url: str) -> bool:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        (behind,) = conn.execute("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()").fetchone()
    return bool(behind)


async def test_an_idle_primary_reads_as_no_replica_lag_however_old_its_last_commit(own_postgres, streaming_replica):
    """The false rollback seen on a fresh stack (`replica lag 49.14 s > 8 s`, no write since seeding): WAL that is
    no commit (a checkpoint, which an idle primary writes on its own) arrived at the replica, and the lag was read
    as the age of the last replayed commit while that WAL waited to be replayed."""
    env = {DB_ENV: own_postgres.url, REPLICA_ENV: streaming_replica.url_for("postgres")}
    commit_and_wait_for_replay(own_postgres.url, env[REPLICA_ENV])
    await asyncio.sleep(LIMIT_S + 1.0)  # no commit for longer than the limit

    idle = await run_probe(health(Thresholds(replica_lag_s=LIMIT_S)), env)
    assert idle.verdict == "pass", idle.summary
    assert idle.gauges["replica_lag_s"] == 0.0, idle.gauges

    # the replica's replay stopped just long enough for it to hold a checkpoint record it has not replayed
    streaming_replica.pause_replay()
    try:
        with psycopg.connect(own_postgres.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        wait_until(lambda: received_more_than_replayed(env[REPLICA_ENV]), 30, "the checkpoint reaching the replica")
        waiting = await run_probe(health(Thresholds(replica_lag_s=LIMIT_S)), env)
    finally:
        streaming_replica.resume_replay()
    assert waiting.verdict == "pass", waiting.summary  # before: "replica lag 3.4 s > 2 s"
    assert waiting.gauges["replica_lag_s"] < LIMIT_S, waiting.gauges
    wait_until(lambda: replayed_everything(own_postgres.url, env[REPLICA_ENV]), 30, "the replica catching up")


async def test_a_role_that_cannot_see_other_sessions_leaves_connection_use_and_wal_lag_inconclusive(
        own_postgres, streaming_replica):
    """Without pg_monitor (pg_read_all_stats), pg_stat_activity hides other roles' sessions and pg_stat_replication
    its positions: read as they are, connection use counted only the probe's own session and WAL lag read 0."""
    with psycopg.connect(own_postgres.url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS golive_guard_unprivileged")
        conn.execute("CREATE ROLE golive_guard_unprivileged LOGIN")
    commit_and_wait_for_replay(own_postgres.url, streaming_replica.url_for("postgres"))
    limited = own_postgres.url.replace("postgres@", "golive_guard_unprivileged@", 1)
    env = {DB_ENV: limited, REPLICA_ENV: streaming_replica.url_for("postgres")}

    result = await run_probe(health(Thresholds(connection_use_pct=80, wal_lag_bytes=100 * 1024 * 1024,
                                               replica_lag_s=8)), env)

    assert result.verdict == "inconclusive", result.summary  # before: passed
    assert "connection use unread" in result.summary and "WAL lag unread" in result.summary, result.summary
    assert "pg_monitor" in result.summary, result.summary  # says what to grant
    assert "replica lag" in result.summary and "replica lag unread" not in result.summary  # still measured
    verdicts = {v.metric: v for v in result.verdicts}
    assert not verdicts["connection_use_pct"].passed and not verdicts["wal_lag_bytes"].passed


async def test_a_replica_down_leaves_its_lag_inconclusive_and_the_primary_guards_still_judged(own_postgres):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # a replica that is not running
    env = {DB_ENV: own_postgres.url, REPLICA_ENV: down}

    within = await run_probe(health(Thresholds(replica_lag_s=8, connection_use_pct=80)), env)
    assert within.verdict == "inconclusive", within.summary
    assert f"replica lag unread (replica {REPLICA_ENV}: connection" in within.summary, within.summary
    assert "connection use" in within.summary and "connection use unread" not in within.summary
    assert within.errors_by_class.get("connection", 0) >= 1, within.errors_by_class  # each sample's failure counted

    # a full pool is a breach even while the replica cannot be read (before: lost with the replica's failure)
    over = await run_probe(health(Thresholds(replica_lag_s=8, connection_use_pct=0.01)), env)
    assert over.verdict == "fail", over.summary
    assert "connection use" in over.summary and "> 0.01%" in over.summary, over.summary


async def test_a_primary_down_leaves_every_guard_inconclusive(own_postgres, streaming_replica):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env = {DB_ENV: down, REPLICA_ENV: streaming_replica.url_for("postgres")}
    result = await run_probe(health(Thresholds(replica_lag_s=8, wal_lag_bytes=1024, connection_use_pct=80)), env)
    assert result.verdict == "inconclusive", result.summary
    for words in ("replica lag unread", "WAL lag unread", "connection use unread"):
        assert words in result.summary, result.summary


async def test_a_watched_replica_missing_from_pg_stat_replication_leaves_wal_lag_inconclusive(own_postgres,
                                                                                             streaming_replica):
    """WAL lag is read on the primary: a replica that is down has no row there, so the worst of the rows left
    would read as the lag of all of them."""
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env = {DB_ENV: own_postgres.url, REPLICA_ENV: streaming_replica.url_for("postgres"), "PROBER_TEST_REPLICA_2": down}
    cmd = health(Thresholds(wal_lag_bytes=100 * 1024 * 1024, connection_use_pct=80))
    cmd = cmd.model_copy(update={"probe": cmd.probe.model_copy(
        update={"replica_url_envs": [REPLICA_ENV, "PROBER_TEST_REPLICA_2"]})})
    result = await run_probe(cmd, env)
    assert result.verdict == "inconclusive", result.summary
    assert "WAL lag unread (pg_stat_replication shows 1 of the 2 replicas" in result.summary, result.summary
    assert result.gauges["wal_lag_bytes:replica1"] >= 0  # the replica that streams is still measured
