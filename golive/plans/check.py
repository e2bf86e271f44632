"""`golive plan check`: the plan's own validation plus the migrator's lint, before anything runs."""

from __future__ import annotations

from pathlib import Path

from services.migrator.statements import lint
from services.notifier.sinks import known_types, sink_for
from services.notifier.templates import check_templates
from shared.plan import Plan, PlanError, load_plan_with_lines


def check_plan(path: Path) -> Plan:
    """A valid plan, or PlanError listing every problem (structure, references, unsafe SQL, templates), each
    naming the file, the path in the plan and its line. The file is read, parsed and its templates rendered
    within fixed bounds of size, time and memory, whatever it holds (shared/plan/yaml_file.py, notifier/sandbox.py)."""
    try:
        plan, line_of = load_plan_with_lines(path)
        problems = []
        for i, statement in enumerate(plan.migrations.statements):
            linted = lint(statement.sql, statement.name, {w.rule: w.reason for w in statement.waive})
            for finding in linted.errors:
                problems.append(f"migrations.statements[{i}].sql ({statement.name}): {finding.describe()}")
        problems += notification_problems(plan, line_of)
        if problems:
            raise PlanError(problems)
    except PlanError as exc:
        raise PlanError([_in_file(path, p) for p in exc.problems]) from None
    return plan


def _in_file(path: Path, problem: str) -> str:
    return problem if problem.startswith(f"{path}:") else f"{path}: {problem}"


def notification_problems(plan: Plan, line_of=None) -> list[str]:
    """Sinks of a type no module provides, and templates that do not compile or render."""
    spec = plan.notifications
    types = known_types()
    problems = []
    for name, sink in spec.sinks.items():
        if sink.type not in types:
            problems.append(f"notifications.sinks.{name}.type: no sink of type {sink.type!r} (types: {', '.join(types)})")
            continue
        try:
            sink_for(sink)  # the sink's own settings (Slack's format, ...)
        except ValueError as exc:
            problems.append(f"notifications.sinks.{name}: {exc}")
    return problems + check_templates(spec, line_of)
