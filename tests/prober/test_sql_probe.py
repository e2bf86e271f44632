"""The sql probe against a real PostgreSQL: honest counts, classified errors, writes always rolled back,
parameters from generators."""

from __future__ import annotations

import psycopg
import pytest

from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import run_probe
from golive.services.prober.sql_probe import may_write
from golive.shared.commands import SampledParams, SequenceParams, Thresholds
from tests.prober.conftest import DB_ENV, sql_command

# Only the tests marked `timing` below rest on measured latencies or rates (pyproject: markers); the others judge
# classes, counts of at least one, contents or order, and run with the parallel part.


@pytest.mark.timing  # measured latencies or rates decide it
async def test_probe_measures_a_query_and_judges_its_p95(database_url):
    result = await run_probe(sql_command("SELECT pg_sleep(0.02)", duration_s=0.5, concurrency=2,
                                         thresholds=Thresholds(p95_ms=10)), {DB_ENV: database_url})
    assert 10 <= result.count <= 60  # two workers, ~20 ms each, for half a second
    assert result.p50_ms >= 20
    assert not result.passed and "p95" in result.summary and "> 10" in result.summary


async def test_probe_classifies_timeouts_and_sql_errors(database_url):
    slow = await run_probe(sql_command("SELECT pg_sleep(1)", timeout_ms=50, duration_s=0.3), {DB_ENV: database_url})
    broken = await run_probe(sql_command("SELECT * FROM no_such_table", duration_s=0.2), {DB_ENV: database_url})
    assert slow.errors_by_class["timeout"] >= 1 and slow.count == 0
    assert broken.errors_by_class["sql"] >= 1 and broken.count == 0


async def test_probe_that_writes_leaves_no_rows_behind(database_url):
    insert = sql_command("INSERT INTO stripe_events (stripe_id, type, created_at) VALUES (%s, 'probe', now())",
                         params_from=SequenceParams(template=["evt_probe_{n}"]), duration_s=0.3)
    result = await run_probe(insert, {DB_ENV: database_url})
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM stripe_events WHERE type = 'probe'").fetchone()[0]
    assert result.count > 0 and result.errors == 0
    assert left == 0


async def test_probe_allowed_to_write_commits_its_writes(database_url):
    insert = sql_command("INSERT INTO stripe_events (stripe_id, type, created_at) VALUES (%s, 'probe', now())",
                         params_from=SequenceParams(template=["evt_kept_{n}"]), allow_writes=True, duration_s=0.2)
    result = await run_probe(insert, {DB_ENV: database_url})
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT count(*) FROM stripe_events WHERE type = 'probe'").fetchone()[0]
    assert result.count > 0 and kept == result.count


async def test_a_write_hidden_in_a_read_fails_instead_of_writing(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS "
                     "$$ INSERT INTO stripe_events (stripe_id, type, created_at) VALUES ('x' || random(), 'sneaky', now()) RETURNING 1 $$")
    result = await run_probe(sql_command("SELECT sneaky()", duration_s=0.2), {DB_ENV: database_url})
    with psycopg.connect(database_url) as conn:
        written = conn.execute("SELECT count(*) FROM stripe_events WHERE type = 'sneaky'").fetchone()[0]
    assert result.count == 0 and result.errors_by_class["sql"] > 0
    assert written == 0


async def test_sampled_parameters_come_from_rows_of_the_sampling_query(database_url):
    cmd = sql_command("SELECT 1 / (CASE WHEN %s LIKE 'user%%@example.com' THEN 1 ELSE 0 END)",
                      params_from=SampledParams(query="SELECT email FROM auth.users LIMIT 50"), duration_s=0.2)
    result = await run_probe(cmd, {DB_ENV: database_url})
    assert result.count > 0 and result.errors == 0  # a parameter from elsewhere would divide by zero


async def test_sampling_query_without_rows_refuses_to_start(database_url):
    cmd = sql_command("SELECT %s", params_from=SampledParams(query="SELECT 1 WHERE false"))
    with pytest.raises(ProbeSetupError, match="no rows"):
        await run_probe(cmd, {DB_ENV: database_url})


async def test_missing_database_variable_names_the_variable_not_a_value():
    with pytest.raises(ProbeSetupError, match=DB_ENV):
        await run_probe(sql_command("SELECT 1"), {})


def test_only_plain_reads_count_as_reads():
    assert not may_write("SELECT id FROM review_items WHERE user_id = %s")
    assert not may_write("-- recent\nWITH r AS (SELECT 1) SELECT * FROM r")
    for query in ("INSERT INTO t VALUES (1)", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
                  "SELECT id FROM t FOR UPDATE SKIP LOCKED", "SELECT nextval('s')", "UPDATE t SET a = 1"):
        assert may_write(query), query
