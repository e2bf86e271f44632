"""The migrator runs only statements that are safe online, says why it refuses the others (rule ids,
waivers), reads progress rows and refuses transaction-mode poolers: the pure core."""

from __future__ import annotations

import pytest

from golive.services.migrator.preflight import pooler_problem
from golive.services.migrator.progress import overall_percent, phase_percent, read_progress
from golive.services.migrator.statements import RULES, StatementError, classify, lint


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)", "idx_events_created"),
        ("CREATE UNIQUE INDEX CONCURRENTLY idx_events_key ON events(key)", "idx_events_key"),
        ("create index concurrently idx_lower on events using btree (lower(type))", "idx_lower"),
        ("  CREATE INDEX CONCURRENTLY idx_invoices ON billing.invoices(id);  ", "billing.idx_invoices"),
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


# --- lint: rule ids, waivers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("CREATE INDEX idx_a ON events(a)", "require-concurrent-index-creation"),
        ("DROP INDEX idx_a", "require-concurrent-index-deletion"),
        ("REINDEX INDEX idx_a", "require-concurrent-reindex"),
        ("CREATE INDEX CONCURRENTLY ON events(a)", "require-index-name"),
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON events(a)", "ban-if-not-exists"),
        ("ANALYZE events; ANALYZE other", "one-statement-per-entry"),
        ("BEGIN; CREATE INDEX CONCURRENTLY idx_a ON events(a); COMMIT", "ban-transaction-wrapper"),
        ("BEGIN", "ban-transaction-wrapper"),
        ("VACUUM FULL events", "ban-vacuum-full"),
        ("ALTER TABLE events ADD COLUMN b int", "unsupported-statement"),
        ("DROP INDEX CONCURRENTLY idx_a, idx_b", "unsupported-statement"),
    ],
)
def test_lint_names_the_rule_each_bad_statement_breaks_with_reason_and_fix(sql, rule):
    linted = lint(sql, "stmt")

    assert rule in [f.rule for f in linted.errors]
    finding = next(f for f in linted.errors if f.rule == rule)
    assert (finding.name, finding.sql) == ("stmt", sql)
    assert finding.reason == RULES[rule].reason and finding.fix == RULES[rule].fix
    assert not linted.ok
    with pytest.raises(StatementError) as refused:
        classify(sql)
    assert f"[{refused.value.rule}]" in str(refused.value)


def test_lint_of_a_good_statement_has_no_findings():
    linted = lint("CREATE INDEX CONCURRENTLY idx_a ON events(a)", "a")

    assert linted.ok and linted.findings == [] and linted.statement.index == "idx_a"


def test_a_waivable_rule_is_waived_per_statement_with_its_reason_recorded():
    linted = lint("CREATE INDEX idx_small ON lookup(code)", "small", {"require-concurrent-index-creation": "200 rows"})

    assert linted.ok and linted.errors == []
    [waived] = linted.waived
    assert (waived.rule, waived.waived) == ("require-concurrent-index-creation", "200 rows")
    assert "waived: 200 rows" in waived.describe()
    assert classify("CREATE INDEX idx_small ON lookup(code)", {"require-concurrent-index-creation": "200 rows"}).index == "idx_small"


@pytest.mark.parametrize(
    ("sql", "waivers", "says"),
    [
        ("ANALYZE a; ANALYZE b", {"one-statement-per-entry": "please"}, "several statements"),
        ("ANALYZE a", {"require-concurrent-index-creation": "why"}, "which this statement does not break"),
        ("ANALYZE a", {"no-such-rule": "why"}, "unknown rule 'no-such-rule'"),
        ("ALTER TABLE a ADD b int", {"unsupported-statement": "trust me"}, "unsupported statement"),
    ],
)
def test_waivers_that_cannot_apply_are_findings_themselves(sql, waivers, says):
    linted = lint(sql, "x", waivers)

    assert not linted.ok
    assert any(says in f.reason for f in linted.errors)


def test_semicolons_inside_quotes_and_comments_do_not_split_a_statement():
    sql = "CREATE INDEX CONCURRENTLY idx_p ON events(a) WHERE note <> 'a;b' -- trailing; comment\n"

    linted = lint(sql)

    assert linted.ok and linted.statement.index == "idx_p"
    assert linted.statement.sql == "CREATE INDEX CONCURRENTLY idx_p ON events(a) WHERE note <> 'a;b' -- trailing; comment"


@pytest.mark.parametrize(
    ("sql", "tables"),
    [("VACUUM (ANALYZE) a, b", ("a", "b")), ("VACUUM ANALYZE", ()), ("ANALYZE a (x, y), s.b", ("a", "s.b"))],
)
def test_maintenance_statements_name_their_tables_or_the_whole_database(sql, tables):
    assert classify(sql).tables == tables


# --- progress: per-phase and overall percent ------------------------------------------------------


def test_phase_percent_reads_the_counter_each_phase_advances():
    assert phase_percent("building index: scanning table", 200, 50, 1000, 10) == 25.0
    assert phase_percent("building index: loading tuples in tree", 200, 200, 1000, 100) == 10.0
    assert phase_percent("index validation: scanning index", 0, 0, 1000, 500) == 50.0
    assert phase_percent("index validation: scanning table", 400, 100, 1000, 900) == 25.0
    assert phase_percent("waiting for old snapshots", 400, 400, 0, 0, 4, 1) == 25.0
    # sorting reports no counter of its own; the scan's finished blocks must not read as 100%
    assert phase_percent("building index: sorting live tuples", 200, 200, 0, 0) is None
    assert phase_percent("initializing", 0, 0, 0, 0) is None


def test_overall_percent_weights_the_phases_of_a_concurrent_build_in_order():
    order = ["initializing", "waiting for writers before build", "building index: scanning table",
             "building index: sorting live tuples", "building index: loading tuples in tree",
             "waiting for writers before validation", "index validation: scanning index",
             "index validation: sorting tuples", "index validation: scanning table", "waiting for old snapshots"]
    points = [overall_percent(p, w) for p in order for w in (0, 50, 100)]

    assert points == sorted(points) and points[0] == 0.0 and points[-1] < 100.0
    assert overall_percent("building index: scanning table", 50) == 25.0
    assert overall_percent("some future phase", 50) is None


def test_a_progress_row_reads_as_phase_percentages_lockers_and_blocker():
    row = ("waiting for old snapshots", 3, 1, 4242, 0, 0, 0, 0, 4242)

    progress = read_progress(row, "SELECT 1")

    assert (progress.phase, progress.phase_percent, progress.lockers_total, progress.lockers_done) == (
        "waiting for old snapshots", 33.3, 3, 1)
    assert (progress.blocking_pid, progress.blocking_query, progress.waiting) == (4242, "SELECT 1", True)
    assert progress.overall_percent == 96.0


# --- preflight: transaction-mode poolers ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres.abc:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
        "postgresql://u:pw@db.example.com/postgres?pgbouncer=true",
        "host=aws-0-eu.pooler.supabase.com port=6543 dbname=postgres",
    ],
)
def test_a_transaction_mode_pooler_url_is_refused_without_echoing_the_password(url):
    problem = pooler_problem(url)

    assert problem and "transaction-mode pooler" in problem and "session-mode" in problem
    assert "pw" not in problem


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres:pw@db.abc.supabase.co:5432/postgres",
     "postgresql://postgres.abc:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
     "postgresql://u@127.0.0.1/golive"],
)
def test_direct_and_session_mode_connections_pass(url):
    assert pooler_problem(url) is None


def test_other_sessions_queries_are_shown_without_credentials():
    from golive.services.migrator.query_text import shown_query

    shown = shown_query("ALTER ROLE app PASSWORD 'hunter2'; SELECT dblink('postgresql://u:s3cret@db/x', 'q')")

    assert "hunter2" not in shown and "s3cret" not in shown
    assert shown == "ALTER ROLE app PASSWORD $1; SELECT dblink($2, $3)"
