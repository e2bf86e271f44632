"""Index names as PostgreSQL holds them (issue 12, finding 2): a quoted mixed-case or a folded name is found,
dropped and reported by its exact catalog name, every drop and build is read back from pg_index before it is
reported, and a valid index with the plan's name but another definition is not taken for the plan's."""

from __future__ import annotations

import psycopg
import pytest

from golive.services.migrator.runner import MigrationFailed, apply_migrations, revert_migrations
from golive.shared.commands import (
    ApplyMigrations,
    MigrationRetry,
    MigrationSession,
    MigrationStatement,
    RevertMigrations,
)

SESSION = MigrationSession(lock_timeout_ms=5000, application_name="golive-migrator-test", progress_interval_s=0.2)


def apply_cmd(*sql: str, name: str = "s") -> ApplyMigrations:
    return ApplyMigrations(database_url_env="UNUSED", session=SESSION, retry=MigrationRetry(max_attempts=1),
                           statements=[MigrationStatement(name=f"{name}{i}", sql=s) for i, s in enumerate(sql)])


def revert_cmd(*sql: str) -> RevertMigrations:
    return RevertMigrations(database_url_env="UNUSED", session=SESSION,
                            statements=[MigrationStatement(name=f"s{i}", sql=s) for i, s in enumerate(sql)])


def indexes(url: str) -> dict[str, tuple[bool, bool]]:
    """Every index in the database but primary keys and the history's: exact name -> (valid, ready)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT i.indisprimary "
            "AND c.relname NOT LIKE 'golive_migrations%%'").fetchall()
    return {name: (valid, ready) for name, valid, ready in rows}


@pytest.fixture
def dupes_url(big_url) -> str:
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dupes (id serial PRIMARY KEY, code text)")
        conn.execute("INSERT INTO dupes (code) SELECT 'c' || (g % 500) FROM generate_series(1, 2000) g")
    return big_url


async def test_a_failed_build_of_a_quoted_mixed_case_index_leaves_nothing_invalid(dupes_url, context):
    with pytest.raises(MigrationFailed) as failed:
        await apply_migrations(apply_cmd('CREATE UNIQUE INDEX CONCURRENTLY "IdxDupesMixed" ON dupes (code)'), context())

    assert "was dropped" in failed.value.reason
    assert "IdxDupesMixed" not in indexes(dupes_url)  # what the reason says is what the database holds


async def test_an_invalid_quoted_mixed_case_index_is_dropped_and_rebuilt(dupes_url, context):
    with psycopg.connect(dupes_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute('CREATE UNIQUE INDEX CONCURRENTLY "IdxDupesMixed" ON dupes (code)')
        conn.execute("DELETE FROM dupes WHERE id > 500")
    assert indexes(dupes_url)["IdxDupesMixed"][0] is False

    applied = await apply_migrations(apply_cmd('CREATE UNIQUE INDEX CONCURRENTLY "IdxDupesMixed" ON dupes (code)'),
                                     context())

    assert applied.results[0].action == "rebuilt_invalid"
    assert indexes(dupes_url)["IdxDupesMixed"] == (True, True)


@pytest.mark.parametrize(("sql", "catalog"), [
    ('CREATE INDEX CONCURRENTLY "IdxRevertMe" ON big_events (kind)', "IdxRevertMe"),
    ("CREATE INDEX CONCURRENTLY IdxFolded ON big_events (kind)", "idxfolded"),
])
async def test_revert_drops_a_mixed_case_or_folded_index_and_says_so_only_once_it_is_gone(big_url, context, sql,
                                                                                          catalog):
    await apply_migrations(apply_cmd(sql), context(run_id="run-names"))
    assert catalog in indexes(big_url)

    reverted = await revert_migrations(revert_cmd(sql), context(run_id="run-names"))

    assert [r.action for r in reverted.results] == ["dropped"]
    assert catalog not in indexes(big_url)


async def test_a_valid_index_with_the_plans_name_and_another_definition_is_not_already_present(big_url, context):
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX idx_big_kind ON big_events (created_at)")

    with pytest.raises(MigrationFailed) as failed:
        await apply_migrations(apply_cmd("CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)"), context())

    assert "another definition" in failed.value.reason
    assert "USING btree (created_at)" in failed.value.reason  # the index there, as PostgreSQL defines it
    assert "CREATE INDEX CONCURRENTLY idx_big_kind ON big_events (kind)" in failed.value.reason  # the plan's


async def test_a_valid_index_with_the_plans_definition_written_differently_is_already_present(big_url, context):
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX idx_big_charges ON big_events (created_at) WHERE kind = 'charge'")

    applied = await apply_migrations(apply_cmd(
        "create index concurrently IDX_BIG_CHARGES on public.big_events using btree ( created_at ) "
        "where (kind = 'charge'::text)"), context())
    again = await apply_migrations(apply_cmd(
        "CREATE INDEX CONCURRENTLY idx_big_charges ON big_events (created_at) WHERE kind = $$charge$$", name="t"),
        context())

    assert applied.results[0].action == "already_present" and again.results[0].action == "already_present"


async def test_an_index_of_the_plans_name_on_another_table_is_not_already_present(big_url, context):
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX idx_note ON other_things (note)")
        conn.execute("ALTER TABLE big_events ADD COLUMN note text")

    with pytest.raises(MigrationFailed) as failed:
        await apply_migrations(apply_cmd("CREATE INDEX CONCURRENTLY idx_note ON big_events (note)"), context())

    assert "another table" in failed.value.reason and "other_things" in failed.value.reason
