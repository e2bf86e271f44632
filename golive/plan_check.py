"""`golive plan check`: the plan's own validation plus the migrator's lint, before anything runs."""

from __future__ import annotations

from pathlib import Path

from services.coordinator.plan import Plan, PlanError, load_plan
from services.migrator.statements import StatementError, classify


def check_plan(path: Path) -> Plan:
    """A valid plan, or PlanError listing every problem (structure, references, unsafe SQL)."""
    plan = load_plan(path)
    problems = []
    for i, statement in enumerate(plan.migrations.statements):
        try:
            classify(statement.sql)
        except StatementError as exc:
            problems.append(f"migrations.statements[{i}].sql ({statement.name}): {exc}")
    if problems:
        raise PlanError(problems)
    return plan
