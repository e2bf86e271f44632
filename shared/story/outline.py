"""The steps of a plan as a run's story counts them ("step 5 of 8"), and the labels its probes carry.

The coordinator builds the same steps with their commands (services/coordinator/steps.py: build_steps); a unit test
holds the two to the same names and order (tests/unit/test_story.py), so "step x of N" counts what the coordinator
runs.
"""

from __future__ import annotations

from golive.shared.plan import Plan
from golive.shared.plan.checks import Gate
from golive.shared.step_ref import StepRef, preflight_gate_name
from golive.shared.story.model import PlannedStep


def outline(plan: Plan) -> tuple[PlannedStep, ...]:
    """The run's steps in runbook order: preflight, migrate, smoke, each stage's [gate], shift and hold, final
    validation, lock-in (the traffic target taken before them is not a step of the plan)."""
    steps: list[PlannedStep] = []
    for item in plan.preflight:
        if isinstance(item, Gate):
            name = preflight_gate_name(item.gate, {s.name for s in steps})
            steps.append(PlannedStep(name, StepRef(phase="preflight", kind="gate"), item.gate))
        else:
            steps.append(PlannedStep(f"preflight:check:{item.probe}",
                                     StepRef(phase="preflight", kind="check", probe=item.probe)))
    if plan.migrations.statements:
        steps.append(PlannedStep("migrate", StepRef(phase="migrate", kind="migrate")))
    steps += [PlannedStep(f"smoke:{c.probe}", StepRef(phase="smoke", kind="smoke", probe=c.probe)) for c in plan.smoke]
    for n, stage in enumerate(plan.canary.stages, start=1):
        if stage.approval:
            steps.append(PlannedStep(f"stage{n}:gate", StepRef(phase="canary", kind="gate", stage=n)))
        steps.append(PlannedStep(f"stage{n}:shift:{stage.weight}", StepRef(phase="canary", kind="shift", stage=n)))
        if stage.checks or plan.guards is not None:
            steps.append(PlannedStep(f"stage{n}:hold", StepRef(phase="canary", kind="hold", stage=n)))
    if plan.final_validation:
        steps.append(PlannedStep("final_validation", StepRef(phase="final_validation", kind="validate")))
    if plan.lock_in.promote:
        steps.append(PlannedStep("lock_in:promote", StepRef(phase="lock_in", kind="promote")))
    return tuple(steps)

