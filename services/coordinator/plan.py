"""The plan as the coordinator reads it: the one model in shared/plan/, under the names this module has always
offered (the CLI, the tests and the recorded-stream replay import them from here). New code imports shared.plan."""

from __future__ import annotations

from shared.plan import PlanError, load_plan, load_plan_with_lines, parse_plan
from shared.plan.canary import Analysis
from shared.plan.checks import Check, Gate
from shared.plan.plan import Plan, plan_from_dict, plan_of, plan_schema
from shared.plan.post_deploy import PostDeploy

__all__ = ["Analysis", "Check", "Gate", "Plan", "PlanError", "PostDeploy", "load_plan", "load_plan_with_lines",
           "parse_plan", "plan_from_dict", "plan_of", "plan_schema"]
