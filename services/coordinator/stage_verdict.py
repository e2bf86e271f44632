"""A canary stage's verdict (StageJudged): the coordinator's to say, once per stage.

Pass when the stage's last step (its hold, or its shift when it holds nothing) passed; fail when the run fails in
one of its steps. The verdict carries the stage hold's tally: how many windows were judged, failed, inconclusive.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from golive.services.coordinator.saga_state import EmitEvent, Output, RunState
from golive.services.coordinator.steps import Step
from golive.shared.envelope import Message
from golive.shared.events import ProbeCompleted, ProbesCompleted, StageJudged


def stage_verdict(state: RunState, stage: int, verdict: Literal["pass", "fail"],
                  reason: str) -> tuple[RunState, list[Output]]:
    """StageJudged for ``stage``, unless it was judged already (a paused run fails at the step it passed)."""
    if stage <= state.judged_stage:
        return state, []
    evidence = state.tally.evidence
    judged = StageJudged(stage=stage, weight=state.plan.canary.stages[stage - 1].weight, verdict=verdict,
                         reason=reason, windows=sum(e.conclusive + e.inconclusive for e in evidence),
                         failed_windows=state.tally.failures, inconclusive_windows=state.tally.inconclusive)
    return replace(state, judged_stage=stage), [EmitEvent(f"{state.run_id}/stage/{stage}", judged)]


def stage_passed(state: RunState, step: Step, answer: Message) -> tuple[RunState, list[Output]]:
    """The stage's pass verdict, when ``step`` (passed) is the last step of its stage."""
    following = state.steps[state.position + 1] if state.position + 1 < len(state.steps) else None
    if step.stage is None or (following is not None and following.stage == step.stage):
        return state, []
    if isinstance(answer, ProbesCompleted | ProbeCompleted):
        reason = f"{step.name} passed: {answer.summary}"
    else:
        reason = f"{step.name} passed; the stage holds no checks"
    return stage_verdict(state, step.stage, "pass", reason)
