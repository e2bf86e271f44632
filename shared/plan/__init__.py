"""The plan, modelled once, where every service imports it: a go-live as typed sections (one module each),
validated once where it comes in (a plan file, a StartRun, a stored run_started) and passed on typed.

- plan.py: the Plan and the rules across sections; ``plan_of`` (a stored run's plan), ``plan_from_dict``
- files.py: plan files (``load_plan``, ``parse_plan``); problems.py: PlanError, each problem with its file, line,
  path and reason in plain words
- probes/: probe kinds, one module each and a registry; commands carry their specs (shared/commands.py)
- checks.py, migrations.py, notifications.py, traffic.py, canary.py, window.py, recovery.py, post_deploy.py,
  targets.py: the sections; durations.py: ``30s``, ``1h30m``
- shared/plan_versions.py: the plan format's version and the upgrades of older ones
"""

from __future__ import annotations

from golive.shared.plan.files import load_plan, load_plan_with_lines, parse_plan
from golive.shared.plan.plan import Database, Plan, plan_from_dict, plan_of, plan_schema
from golive.shared.plan.problems import PlanError, PlanProblem

__all__ = ["Database", "Plan", "PlanError", "PlanProblem", "load_plan", "load_plan_with_lines", "parse_plan", "plan_from_dict",
           "plan_of", "plan_schema"]
