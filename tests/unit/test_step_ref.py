"""Steps are typed: every event about a step carries its fields (phase, kind, stage, probe), built with the step;
events stored before that carry only the name and read the same fields from it, in one place."""

from __future__ import annotations

import pytest

from golive.services.coordinator.steps import build_steps
from golive.shared.events import CompensationStarted, PhaseStarted, StepEvent, StepFailed, StepRef, WindowJudged
from golive.shared.plan import load_plan
from golive.shared.step_ref import ref_of_name
from tests.harness import REPO
from tests.unit.saga_run import PLAN_YAML, events, hold_result, plan_from, started_run

PREFLIGHT = plan_from(**{"migrations:": "preflight:\n  - {gate: Confirm backup completion}\n"
                                       "  - {probe: recent, duration: 2s}\nmigrations:"})
PLANS = [plan_from(PLAN_YAML), PREFLIGHT, load_plan(REPO / "golive" / "plans" / "supabase-golive.yaml")]


@pytest.mark.parametrize("plan", PLANS, ids=["unit", "preflight", "supabase-golive"])
def test_the_name_of_every_step_built_today_reads_back_as_its_fields(plan):
    steps = build_steps(plan, "deploy-new", "deploy-old")

    assert steps
    for step in steps:
        assert ref_of_name(step.name) == step.ref, step.name
        assert ref_of_name(f"undo:{step.name}") == step.ref.undone()


def test_a_stage_step_carries_its_stage_and_kind():
    kinds = [(s.kind, s.stage) for s in build_steps(PREFLIGHT, "deploy-new", "deploy-old")]

    assert kinds == [("gate", None), ("check", None), ("migrate", None), ("smoke", None), ("shift", 1), ("hold", 1),
                     ("shift", 2), ("hold", 2)]


def test_every_event_the_saga_says_about_a_step_carries_its_fields():
    run = started_run()
    run.advance_to("stage2:hold")
    run.answer(hold_result(passed=False))
    while run.state.outcome is None:
        run.succeed()

    about_steps = [e for e in events(run.outputs) if isinstance(e, StepEvent)]
    assert {type(e) for e in about_steps} >= {PhaseStarted, StepFailed, CompensationStarted}
    assert all(e.at is not None for e in about_steps)
    (failed,) = [e for e in about_steps if isinstance(e, StepFailed)]
    assert failed.at == StepRef(phase="canary", kind="hold", stage=2)
    undo_shift = next(e for e in about_steps if isinstance(e, CompensationStarted) and e.undoes == "stage1:shift:10")
    assert undo_shift.at == StepRef(phase="canary", kind="shift", stage=1, undoing=True)


@pytest.mark.parametrize(("name", "ref"), [
    ("stage2:shift:50", StepRef(phase="canary", kind="shift", stage=2)),
    ("stage3:hold", StepRef(phase="canary", kind="hold", stage=3)),
    ("stage1:gate", StepRef(phase="canary", kind="gate", stage=1)),
    # one step per stage check, as runs before one-clock holds named them
    ("stage2:check:recent", StepRef(phase="canary", kind="hold", stage=2, probe="recent")),
    ("preflight:gate:1", StepRef(phase="preflight", kind="gate")),
    ("smoke:recent", StepRef(phase="smoke", kind="smoke", probe="recent")),
    ("undo:migrate", StepRef(phase="migrate", kind="migrate", undoing=True)),
    ("traffic:take", StepRef(phase="preflight", kind="take")),
    ("something:new", StepRef(phase=None, kind="other")),
])
def test_an_event_stored_without_the_fields_reads_them_from_its_step_name(name, ref):
    started = PhaseStarted.model_validate({"phase": "canary", "step": name, "detail": ""})
    judged = WindowJudged.model_validate({"step": name, "probe": "recent", "index": 0, "verdict": "pass", "reason": ""})

    assert started.at is None and started.where == ref
    assert judged.where == ref


def test_the_fields_an_event_carries_win_over_its_name():
    event = StepFailed(step="stage1:hold", at=StepRef(phase="canary", kind="hold", stage=7), reason="r")

    assert event.where.stage == 7
