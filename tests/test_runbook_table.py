"""docs/plans.md's "The runbook as a plan" table cannot drift: every plan key it names exists in
golive/plans/supabase-golive.yaml, every heading of the runbook (docs/runbook.md) has a row, and the plan is valid."""

from __future__ import annotations

import re

import yaml

from golive import plans
from golive.shared.plan import load_plan
from tests.harness import REPO

PLAN = plans.RUNBOOK
RUNBOOK = REPO / "docs" / "runbook.md"
SECTION = "## The runbook as a plan"
NOT_STEPS = {"Overview", "👥 Responsibilities", "Emergency Contacts"}  # people and phone numbers, not steps


def table_rows() -> list[list[str]]:
    text = (REPO / "docs" / "plans.md").read_text()
    assert SECTION in text, f"docs/plans.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) > 2, "the section has no table"
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def plan_keys(cell: str) -> list[str]:
    """The backticked names in a cell that look like plan keys (`a.b.c`, `canary.stages`), not commands or flags."""
    return [k for k in re.findall(r"`([^`]+)`", cell) if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)*", k)]


def lookup(data: dict, key: str) -> bool:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def runbook_steps() -> list[str]:
    headings = re.findall(r"^#{2,3} (.+)$", RUNBOOK.read_text(), re.MULTILINE)
    # "Phase 1: Database Migrations (02:00-02:20 UTC)" -> "Phase 1: Database Migrations"
    return [re.sub(r"\s*\(.*\)$", "", h).strip() for h in headings if h.strip() not in NOT_STEPS]


def test_every_plan_key_in_the_readme_table_exists_in_the_runbook_plan():
    plan = yaml.safe_load(PLAN.read_text())
    named = [(row[0], key) for row in table_rows() for key in plan_keys(row[1])]
    assert len(named) >= 20, named
    missing = [f"{step}: {key}" for step, key in named if not lookup(plan, key)]
    assert not missing, f"docs/plans.md names plan keys that golive/plans/supabase-golive.yaml does not have: {missing}"


def test_every_runbook_heading_has_a_row_in_the_readme_table():
    steps = [row[0] for row in table_rows()]
    headings = runbook_steps()
    assert "Phase 1: Database Migrations" in headings and "Communication Plan" in headings, headings
    missing = [h for h in headings if not any(step.startswith(h) for step in steps)]
    assert not missing, f"runbook headings without a row in docs/plans.md's {SECTION!r} table: {missing}"


def test_every_row_names_at_least_one_plan_key_and_who_performs_it():
    rows = table_rows()
    assert len(rows) > 5, rows
    for row in rows:
        assert len(row) == 3, row
        assert plan_keys(row[1]), f"row {row[0]!r} names no plan key"
        assert row[2], f"row {row[0]!r} does not say who performs it"


def test_the_runbook_plan_is_valid():
    plan = load_plan(PLAN)
    assert [s.weight for s in plan.canary.stages] == [10, 50, 100]
    assert [s.hold for s in plan.canary.stages] == [1800, 900, 900]
    assert [s.checks[1].thresholds.error_rate_pct for s in plan.canary.stages] == [1.0, 1.5, 1.0]
    smoke_p95 = {c.probe: c.thresholds.p95_ms for c in plan.smoke if c.thresholds.p95_ms}
    assert smoke_p95 == {"stripe_upsert": 20, "netvisor_pick": 40, "review_list": 30, "signup_exists": 10}
    assert all(c.duration == 60 for c in plan.smoke if c.probe in smoke_p95)
    assert plan.guards.limits() == {"replica_lag_s": 8, "wal_lag_bytes": 100 * 1024 * 1024, "connection_use_pct": 80}
    assert plan.window.rollback == 600
