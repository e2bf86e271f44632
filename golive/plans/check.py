"""`golive plan check`: the plan's own validation plus the migrator's lint, before anything runs."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from golive.services.migrator.statements import lint
from golive.services.notifier.sinks import known_types, sink_for
from golive.services.notifier.templates import check_templates
from golive.services.prober.prometheus_probe import plan_problems as promql_refused
from golive.shared.plan import Plan, PlanError, load_plan_with_lines
from golive.shared.plan.probes import PrometheusProbe
from golive.shared.plan.problems import PlanProblem

LineOf = Callable[[list[str | int]], int | None]


def check_plan(path: Path) -> Plan:
    """A valid plan, or PlanError listing every problem (structure, references, unsafe SQL, templates), each as
    ``FILE:LINE: path.in.plan: reason``. The file is read, parsed and its templates rendered within fixed bounds
    of size, time and memory, whatever it holds (shared/plan/yaml_file.py, notifier/sandbox.py)."""
    plan, line_of = load_plan_with_lines(path)
    problems: list[PlanProblem] = []
    for i, statement in enumerate(plan.migrations.statements):
        linted = lint(statement.sql, statement.name, {w.rule: w.reason for w in statement.waive})
        for finding in linted.errors:
            loc: list[str | int] = ["migrations", "statements", i, "sql"]
            problems.append(PlanProblem(f"migrations.statements[{i}].sql", f"{statement.name}: {finding.describe()}",
                                        line_of(loc)))
    problems += notification_problems(plan, line_of)
    problems += promql_problems(plan, line_of)
    if problems:
        raise PlanError(sorted(problems, key=lambda p: p.line or 0), str(path))
    return plan


def notification_problems(plan: Plan, line_of: LineOf | None = None) -> list[PlanProblem]:
    """Sinks of a type no module provides, and templates that do not compile or render."""
    spec = plan.notifications
    types = known_types()
    problems = []
    for name, sink in spec.sinks.items():
        where: list[str | int] = ["notifications", "sinks", name]
        line = line_of(where) if line_of else None
        if sink.type not in types:
            problems.append(PlanProblem(f"notifications.sinks.{name}.type",
                                        f"no sink of type {sink.type!r} (types: {', '.join(types)})",
                                        line_of([*where, "type"]) if line_of else None))
            continue
        try:
            sink_for(sink)  # the sink's own settings (Slack's format, ...)
        except ValueError as exc:
            problems.append(PlanProblem(f"notifications.sinks.{name}", str(exc), line))
    return problems + [_template_problem(text) for text in check_templates(spec, line_of)]


def promql_problems(plan: Plan, line_of: LineOf | None = None) -> list[PlanProblem]:
    """The PromQL of prometheus probes that their server refuses, in its words (skipped when it cannot be reached
    from here: the prober asks again when the probe starts)."""
    asked = {name: (probe.url, probe.queries) for name, probe in plan.probes.items() if isinstance(probe, PrometheusProbe)}
    if not asked:
        return []
    return [PlanProblem(f"probes.{name}.queries.{which}", f"Prometheus refuses it: {why}",
                        line_of(["probes", name, "queries", which]) if line_of else None)
            for (name, which), why in promql_refused(asked, dict(os.environ)).items()]


# check_templates (services/notifier/templates.py) words each problem as ``WHERE (line N): why``
_TEMPLATE_PROBLEM = re.compile(r"^(?P<where>\S+?)(?: \(line (?P<line>\d+)\))?: (?P<reason>.*)$", re.DOTALL)


def _template_problem(text: str) -> PlanProblem:
    found = _TEMPLATE_PROBLEM.match(text)
    if found is None:
        return PlanProblem("notifications.templates", text)
    line = found["line"]
    return PlanProblem(found["where"], found["reason"], int(line) if line else None)
