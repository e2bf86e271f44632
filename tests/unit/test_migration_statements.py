"""The migrator runs only statements that are safe online, and says why it refuses the others."""

from __future__ import annotations

import pytest

from services.migrator.statements import StatementError, classify


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)", "idx_events_created"),
        ("CREATE UNIQUE INDEX CONCURRENTLY idx_events_key ON events(key)", "idx_events_key"),
        ("create index concurrently idx_lower on events using btree (lower(type))", "idx_lower"),
        ("  CREATE INDEX CONCURRENTLY billing.idx_invoices ON billing.invoices(id);  ", "billing.idx_invoices"),
        ("CREATE INDEX\n  CONCURRENTLY idx_multiline\n  ON events (created_at)\n  WHERE type = 'charge'", "idx_multiline"),
    ],
)
def test_concurrent_index_build_is_accepted_with_its_index_name(sql, index):
    statement = classify(sql)

    assert statement.kind == "create_index"
    assert statement.index == index


def test_accepted_statement_is_kept_without_surrounding_blanks_or_semicolon():
    assert classify("  ANALYZE events;\n").sql == "ANALYZE events"


@pytest.mark.parametrize(
    ("sql", "kind", "index"),
    [
        ("DROP INDEX CONCURRENTLY idx_events_created", "drop_index", "idx_events_created"),
        ("DROP INDEX CONCURRENTLY IF EXISTS idx_events_created", "drop_index", "idx_events_created"),
        ("REINDEX INDEX CONCURRENTLY idx_events_created", "reindex", "idx_events_created"),
        ("ANALYZE events", "analyze", None),
        ("ANALYZE", "analyze", None),
        ("VACUUM (ANALYZE) events", "vacuum", None),
    ],
)
def test_online_maintenance_statements_are_accepted(sql, kind, index):
    statement = classify(sql)

    assert (statement.kind, statement.index) == (kind, index)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX idx_events_created ON events(created_at)", "CREATE INDEX without CONCURRENTLY blocks writes"),
        ("CREATE UNIQUE INDEX idx_events_key ON events(key)", "CREATE INDEX without CONCURRENTLY blocks writes"),
        ("CREATE INDEX ON events(created_at)", "CREATE INDEX without CONCURRENTLY blocks writes"),
        ("DROP INDEX idx_events_created", "DROP INDEX without CONCURRENTLY blocks reads and writes"),
        ("REINDEX INDEX idx_events_created", "REINDEX without CONCURRENTLY blocks writes"),
    ],
)
def test_index_change_without_concurrently_is_refused(sql, reason):
    with pytest.raises(StatementError, match=reason):
        classify(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX CONCURRENTLY ON events(created_at)",
        "CREATE UNIQUE INDEX CONCURRENTLY ON events (key)",
    ],
)
def test_unnamed_concurrent_index_is_refused_as_unnamed(sql):
    with pytest.raises(StatementError, match="unnamed index: name it"):
        classify(sql)


def test_if_not_exists_is_refused_because_it_accepts_an_invalid_index():
    with pytest.raises(StatementError, match="IF NOT EXISTS accepts an INVALID index"):
        classify("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_events_created ON events(created_at)")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX CONCURRENTLY idx_a ON events(a); CREATE INDEX CONCURRENTLY idx_b ON events(b)",
        "ANALYZE events; DROP TABLE events",
    ],
)
def test_several_statements_in_one_string_are_refused(sql):
    with pytest.raises(StatementError, match="several statements in one string"):
        classify(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE events ADD COLUMN note text",
        "DROP TABLE events",
        "UPDATE events SET type = 'x'",
        "REINDEX TABLE CONCURRENTLY events",
        "",
    ],
)
def test_other_statements_are_refused_as_unsupported(sql):
    with pytest.raises(StatementError, match="unsupported statement"):
        classify(sql)


@pytest.mark.parametrize("sql", ["VACUUM FULL stripe_events", "vacuum (full, analyze) stripe_events"])
def test_vacuum_full_is_refused_for_its_exclusive_lock(sql):
    with pytest.raises(StatementError, match="exclusive lock"):
        classify(sql)
