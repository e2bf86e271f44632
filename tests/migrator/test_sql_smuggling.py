"""SQL smuggled behind a dollar quote or an E'' escape never runs (issue 12, finding 1): `golive plan check` and
`golive migrate` refuse it (exit 2), the migrator refuses it, and even a statement that got past the lint could
not run a second command: the migrator sends each statement with the extended protocol, where PostgreSQL itself
refuses more than one command. Proven on real PostgreSQL: the table ``victim`` is still there."""

from __future__ import annotations

import os

import psycopg
import pytest

from golive.services.migrator.index_build import execute, open_session
from golive.services.migrator.runner import MigrationFailed, apply_migrations
from golive.services.migrator.statements import Statement
from golive.shared.commands import ApplyMigrations, MigrationSession, MigrationStatement, MigrationWaiver
from tests.builders import skeleton_plan
from tests.harness import run_cli

DOLLAR = "CREATE INDEX idx_x ON dupes(code) WHERE code <> $$'$$; DROP TABLE victim; --'"
ESCAPE = "CREATE INDEX idx_x ON dupes(code) WHERE code <> E'\\''; DROP TABLE victim; --'"
HOSTILE = [
    (DOLLAR, True),
    (ESCAPE, True),
    (DOLLAR.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY"), False),
    (ESCAPE.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY"), False),
]
WAIVER = {"rule": "require-concurrent-index-creation", "reason": "small table"}


@pytest.fixture
def victim_url(database_url) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute("CREATE TABLE dupes (code text)")
        conn.execute("INSERT INTO dupes VALUES ('a'), ('b')")
    return database_url


def victim_exists(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass('public.victim') IS NOT NULL").fetchone()[0]


def hostile_plan(tmp_path, sql: str, waive: bool):
    def edit(plan: dict) -> None:
        plan["database"]["url_env"] = "SMUGGLE_TEST_DB"
        plan["migrations"]["statements"] = [{"name": "smuggled", "sql": sql, **({"waive": [WAIVER]} if waive else {})}]

    return skeleton_plan(tmp_path, edit=edit)


@pytest.mark.parametrize(("sql", "waive"), HOSTILE)
def test_plan_check_and_migrate_refuse_a_smuggled_statement_and_victim_survives(victim_url, tmp_path, sql, waive):
    plan = hostile_plan(tmp_path, sql, waive)
    env = {**os.environ, "SMUGGLE_TEST_DB": victim_url}

    checked = run_cli("plan", "check", str(plan), env=env)
    migrated = run_cli("migrate", str(plan), env=env)

    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "one-statement-per-entry" in checked.stdout + checked.stderr
    assert migrated.returncode == 2, migrated.stdout + migrated.stderr
    assert "one-statement-per-entry" in migrated.stdout
    assert victim_exists(victim_url)


@pytest.mark.parametrize(("sql", "waive"), HOSTILE)
async def test_the_migrator_refuses_a_smuggled_statement_as_invalid(victim_url, recorder, sql, waive):
    from golive.services.migrator.runner import Context

    cmd = ApplyMigrations(database_url_env="UNUSED", statements=[MigrationStatement(
        name="smuggled", sql=sql, waive=[MigrationWaiver(**WAIVER)] if waive else [])])

    with pytest.raises(MigrationFailed) as refused:
        await apply_migrations(cmd, Context(url=victim_url, run_id="run-smuggle", command_id="cmd-smuggle",
                                            emit=recorder.emit))

    assert refused.value.failure == "invalid" and "one-statement-per-entry" in refused.value.reason
    assert victim_exists(victim_url)


async def test_a_statement_that_got_past_the_lint_still_runs_alone_or_not_at_all(victim_url):
    forged = Statement("create_index", DOLLAR.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY"), "idx_x")
    conn = await open_session(victim_url, MigrationSession(application_name="golive-migrator-test"))
    try:
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            await execute(conn, forged)
    finally:
        await conn.close()

    assert victim_exists(victim_url)
