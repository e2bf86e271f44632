"""The coordinator's commands for checks on the production alias (services/coordinator/steps.py): in a stage that
splits traffic, the runbook's production_api check compares the canary with stable by the deployment each answer
names; where nothing is split (100%, the final validation) or nothing can be compared (no previous deployment,
no baseline), it does not."""

from __future__ import annotations

from golive.plans import RUNBOOK
from golive.services.coordinator.steps import build_steps
from golive.shared.commands import RunProbe, RunProbes, SplitTraffic
from golive.shared.plan import load_plan

PLAN = load_plan(RUNBOOK)


def checks_of(previous: str | None, plan=PLAN) -> dict[str, dict[str, RunProbe]]:
    """Step name -> probe name -> its RunProbe, for every hold and the final validation."""
    found = {}
    for step in build_steps(plan, "dpl_new", previous):
        if isinstance(step.command, RunProbes):
            found[step.name] = {probe.probe.name: probe for probe in step.command.probes}
    return found


def test_the_alias_check_of_a_split_stage_compares_the_canary_with_stable_by_deployment():
    checks = checks_of("dpl_old")
    for stage in ("stage1:hold", "stage2:hold"):
        production = checks[stage]["production_api"]
        assert production.split == SplitTraffic(canary="dpl_new", stable="dpl_old"), stage
        assert production.baseline is None and production.thresholds.p95_increase_ms == 50
        assert production.probe.deployment_header == "x-golive-deployment"  # type: ignore[union-attr]
        # the check aimed at one deployment still probes its stable twin side by side
        health = checks[stage]["app_health"]
        assert health.split is None and health.baseline is not None


def test_nothing_is_split_at_100_percent_in_the_final_validation_or_without_a_previous_deployment():
    checks = checks_of("dpl_old")
    assert checks["stage3:hold"]["production_api"].split is None
    assert checks["stage3:hold"]["production_api"].thresholds.p95_increase_ms is None
    assert checks["final_validation"]["production_api"].split is None
    first_deploy = checks_of(None)
    assert all(probe.split is None for probes in first_deploy.values() for probe in probes.values())


def test_without_a_baseline_the_alias_is_judged_on_its_thresholds_only():
    plan = PLAN.model_copy(update={"baseline": None})
    assert all(probe.split is None and probe.thresholds.p95_increase_ms is None
               for probes in checks_of("dpl_old", plan).values() for probe in probes.values())
