"""`golive migrate PLAN`: --dry-run lints and shows what would run without touching the database; without
it the plan's migrations run on the plan's database with progress, lock and history."""

from __future__ import annotations

import os

import psycopg

from tests.harness import run_cli
from tests.migrator.migrator_db import index_rows

PLAN = """
name: migrate-only
database: {url_env: MIGRATE_TEST_DB}
migrations:
  session: {lock_timeout_ms: 2000, progress_interval_s: 0.2}
  statements:
    - name: big_created
      sql: CREATE INDEX CONCURRENTLY idx_big_created ON big_events (created_at)
    - name: other_note
      sql: CREATE INDEX idx_other_note ON other_things (note)
      waive: [{rule: require-concurrent-index-creation, reason: two rows}]
    - name: analyze_big
      sql: ANALYZE big_events
canary:
  stages: [{weight: 100, hold: 1s}]
"""


def _history_exists(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass('golive_migrations') IS NOT NULL").fetchone()[0]


def test_dry_run_prints_the_lint_and_what_would_run_and_touches_nothing(big_url, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)

    done = run_cli("migrate", str(plan), "--dry-run", env={**os.environ, "MIGRATE_TEST_DB": big_url})

    assert done.returncode == 0, done.stdout + done.stderr
    assert ("waived  other_note: CREATE INDEX without CONCURRENTLY blocks writes [require-concurrent-index-creation] "
            "waived: two rows") in done.stdout
    assert "1. big_created: build idx_big_created" in done.stdout
    assert "3. analyze_big: analyze big_events" in done.stdout
    assert "SET lock_timeout = '2000ms'" in done.stdout
    assert index_rows(big_url) == [] and not _history_exists(big_url)


def test_dry_run_with_lint_errors_names_each_rule_and_exits_2(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("      waive: [{rule: require-concurrent-index-creation, reason: two rows}]\n", "")
                    .replace("ANALYZE big_events", "BEGIN; ANALYZE big_events; COMMIT"))

    done = run_cli("migrate", str(plan), "--dry-run", env=dict(os.environ))

    assert done.returncode == 2
    assert "ERROR   other_note: CREATE INDEX without CONCURRENTLY blocks writes" in done.stdout
    assert "[require-concurrent-index-creation]" in done.stdout
    assert "[ban-transaction-wrapper]" in done.stdout and "[one-statement-per-entry]" in done.stdout
    assert "nothing would run" in done.stdout


def test_migrate_runs_the_plans_statements_with_progress_and_history(big_url, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    env = {**os.environ, "MIGRATE_TEST_DB": big_url}

    done = run_cli("migrate", str(plan), env=env)
    again = run_cli("migrate", str(plan), env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "big_created: built in" in done.stdout and "analyze_big: executed in" in done.stdout
    assert "dry run" not in done.stdout  # a real migrate says it runs now, not "would run (dry run)"
    assert index_rows(big_url) == [("idx_big_created", True, True)]
    assert again.returncode == 0 and "big_created: already_present" in again.stdout
    assert big_url not in done.stdout + done.stderr
