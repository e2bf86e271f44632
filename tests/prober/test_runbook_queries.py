"""The runbook's four db_performance_check queries on its seeded schema: verdicts against the runbook's
thresholds, and every write rolled back."""

from __future__ import annotations

import psycopg
import pytest

from golive.demo.data import RUNBOOK_QUERIES, fill_runbook_tables
from golive.services.prober.run import run_probe
from golive.shared.commands import LoadSpec, RunProbe, SqlProbeSpec, Thresholds
from tests.prober.conftest import DB_ENV

# Only the tests marked `timing` below rest on measured latencies or rates (pyproject: markers); the others judge
# classes, counts of at least one, contents or order, and run with the parallel part.

RUNBOOK_P95_MS = {"stripe_upsert": 20, "netvisor_pick": 40, "review_list": 30, "signup_exists": 10}
TABLES = ("stripe_events", "auth.users", "review_items", "netvisor_queue")


def table_state(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {
            **{t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES},
            "pending": conn.execute("SELECT count(*) FROM netvisor_queue WHERE status = 'pending'").fetchone(),
            "probe_events": conn.execute("SELECT count(*) FROM stripe_events WHERE stripe_id LIKE 'evt_probe_%'").fetchone(),
        }


@pytest.mark.timing  # measured latencies or rates decide it
async def test_runbook_queries_meet_their_thresholds_and_leave_the_data_as_it_was(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:  # more rows than the shared template has
        conn.execute("TRUNCATE auth.users, review_items, netvisor_queue")
        fill_runbook_tables(conn, stripe_events=0, users=20_000, reviews=100_000, queue=20_000)
        conn.execute("CREATE INDEX ON review_items (user_id, created_at)")
        conn.execute("CREATE INDEX ON auth.users (email)")
        conn.execute("CREATE INDEX ON netvisor_queue (status, created_at)")
    before = table_state(database_url)
    commands = {
        name: RunProbe(
            probe=SqlProbeSpec(name=name, database_url_env=DB_ENV, **RUNBOOK_QUERIES[name]),
            duration_s=1.5, concurrency=2, load=LoadSpec(mode="open", rate=100, warmup_s=0.3),
            thresholds=Thresholds(p95_ms=p95, error_rate_pct=1.0, min_samples=100),
        )
        for name, p95 in RUNBOOK_P95_MS.items()
    }

    results = [await run_probe(cmd, {DB_ENV: database_url}) for cmd in commands.values()]  # one at a time, as the runbook's script

    for result in results:
        assert result.passed, result.summary
        assert result.errors == 0 and 145 <= result.count <= 155, result.summary  # 100/s for 1.5 s; the warm-up's 30 not counted
        assert [v.metric for v in result.verdicts] == ["p95_ms", "error_rate_pct"]
        assert result.verdicts[0].limit == RUNBOOK_P95_MS[result.probe]
    assert table_state(database_url) == before


async def test_a_runbook_query_over_its_threshold_fails_with_the_numbers(database_url):
    cmd = RunProbe(
        probe=SqlProbeSpec(name="review_list", database_url_env=DB_ENV, query="SELECT pg_sleep(0.015), 1"),
        duration_s=0.5, thresholds=Thresholds(p95_ms=10),
    )
    result = await run_probe(cmd, {DB_ENV: database_url})
    assert not result.passed
    assert result.summary.startswith("review_list: p95 ") and "ms > 10 ms (99% bound " in result.summary
