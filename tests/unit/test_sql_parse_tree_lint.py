"""The lint reads PostgreSQL's parse tree, not the text: whatever the quoting, one statement per entry of an
allowed kind, and no waiver ever admits a second statement or another kind (issue 12, finding 1)."""

from __future__ import annotations

import pytest

from golive.services.migrator.statements import MAX_SQL_BYTES, StatementError, classify, index_definition, lint

WAIVE_CONCURRENT = {"require-concurrent-index-creation": "small table"}

SMUGGLED = [
    # a dollar quote holds a single quote: a quote-counting splitter sees one statement, PostgreSQL three parts
    "CREATE INDEX idx_x ON dupes(code) WHERE code <> $$'$$; DROP TABLE victim; --'",
    # an E'' escape: \' does not end the string for PostgreSQL
    "CREATE INDEX idx_x ON dupes(code) WHERE code <> E'\\''; DROP TABLE victim; --'",
    "CREATE INDEX idx_x ON dupes(code) WHERE code <> $tag$'$tag$; DROP TABLE victim; --'",
]


@pytest.mark.parametrize("sql", SMUGGLED)
@pytest.mark.parametrize("waivers", [WAIVE_CONCURRENT, {}])
def test_a_statement_smuggled_behind_a_dollar_quote_or_escape_is_a_second_statement(sql, waivers):
    linted = lint(sql, "smuggled", waivers)

    assert not linted.ok and linted.statement is None
    assert "one-statement-per-entry" in [f.rule for f in linted.errors]


@pytest.mark.parametrize("sql", [s.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY") for s in SMUGGLED])
def test_a_smuggled_statement_is_refused_with_concurrently_and_no_waiver(sql):
    with pytest.raises(StatementError, match="several statements in one string"):
        classify(sql)


@pytest.mark.parametrize(
    ("sql", "waivers"),
    [
        ("DROP TABLE victim", {"unsupported-statement": "trust me"}),
        ("CREATE INDEX idx_x ON dupes(code); DROP TABLE victim", {"one-statement-per-entry": "please",
                                                                  **WAIVE_CONCURRENT}),
        ("VACUUM FULL victim; DROP TABLE victim", {"ban-vacuum-full": "tiny"}),
        ("CREATE TABLE x AS SELECT 1", {"require-concurrent-index-creation": "why"}),
        ("DO $$ BEGIN EXECUTE 'DROP TABLE victim'; END $$", {}),
        ("CREATE INDEX CONCURRENTLY idx_y ON dupes(code) WHERE code <> $$x$$ -- ; DROP TABLE victim", None),
    ],
)
def test_no_waiver_admits_another_kind_or_a_second_statement(sql, waivers):
    linted = lint(sql, "x", waivers)

    if linted.ok:  # the last case: the DROP is inside a comment, PostgreSQL sees one index statement
        assert linted.statement.kind == "create_index" and linted.statement.index == "idx_y"
    else:
        assert linted.statement is None


def test_sql_postgresql_cannot_parse_is_a_finding_with_its_parse_error():
    linted = lint("CREATE INDEX CONCURRENTLY idx_x ON dupes(code) WHERE code <> 'unterminated", "broken")

    [finding] = linted.errors
    assert finding.rule == "syntax-error" and "unterminated quoted string" in finding.reason
    assert not linted.ok


def test_a_statement_over_the_size_limit_is_refused_before_it_is_parsed():
    sql = "CREATE INDEX CONCURRENTLY idx_x ON dupes(code) WHERE code <> '" + "x" * MAX_SQL_BYTES + "'"

    linted = lint(sql, "huge")

    assert [f.rule for f in linted.errors] == ["statement-too-long"]


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ('CREATE INDEX CONCURRENTLY "IdxDupesMixed" ON dupes(code)', ("IdxDupesMixed", None)),
        ("CREATE INDEX CONCURRENTLY IdxFolded ON dupes(code)", ("idxfolded", None)),
        ('CREATE INDEX CONCURRENTLY "Idx" ON "Auth"."Users"(email)', ("Idx", "Auth")),
        ('DROP INDEX CONCURRENTLY "My""Idx"', ('My"Idx', None)),
        ("REINDEX INDEX CONCURRENTLY Billing.IDX_A", ("idx_a", "billing")),
    ],
)
def test_index_names_are_the_catalog_names_postgresql_folds_and_quotes(sql, index):
    statement = classify(sql)

    assert (statement.index_name.name, statement.index_name.schema) == index


def test_mixed_case_names_are_shown_quoted_as_postgresql_prints_them():
    assert classify('CREATE INDEX CONCURRENTLY "IdxDupesMixed" ON dupes(code)').index == '"IdxDupesMixed"'
    assert classify('CREATE INDEX CONCURRENTLY "Idx" ON "Auth"."Users"(email)').index == '"Auth"."Idx"'


def test_drop_index_cascade_is_refused_because_it_drops_constraints_too():
    assert "unsupported-statement" in [f.rule for f in lint("DROP INDEX CONCURRENTLY idx_a CASCADE").errors]


def test_index_definitions_compare_without_whitespace_case_quoting_or_concurrently():
    plan = classify("create index concurrently IDX_A on Dupes  using BTREE ( code ) where code <> 'x'").tree
    catalog = "CREATE INDEX idx_a ON public.dupes USING btree (code) WHERE code <> 'x'"

    assert index_definition(plan) == index_definition(catalog)
    assert index_definition(plan) != index_definition("CREATE INDEX idx_a ON public.dupes USING btree (kind)")
