"""A run's events as the coordinator and the services publish them, built without a bus (for the notifier's tests)."""

from __future__ import annotations

from shared.events import (
    CompensationStarted,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    StepFailed,
    TrafficShifted,
    Verdict,
)
from tests.builders import RunEvents, carried, skeleton_dict


def plan_dict(**notifications) -> dict:
    """The skeleton plan, validated, with ``notifications`` keys replaced."""
    return carried(skeleton_dict(edit=lambda plan: plan["notifications"].update(notifications)))


def probe(passed: bool, p95: float, limit: float = 400.0) -> ProbeCompleted:
    return ProbeCompleted(
        probe="stripe_recent", label="", count=300, errors=0, p50_ms=1.0, p95_ms=p95, p99_ms=p95 + 1, max_ms=p95 + 2,
        duration_s=2.0, verdicts=[Verdict(metric="p95_ms", limit=limit, observed=p95, passed=passed)], passed=passed,
        summary=f"p95 {p95:.2f} {'<=' if passed else '>'} {limit:g} over 300 requests",
    )


class RunLog(RunEvents):
    """One run's events, one second apart, told the way the notifier's tests tell it: stages that pass or breach,
    a success or a rollback."""

    def __init__(self, run_id: str = "run-n1", plan: dict | None = None, root: str = "golive") -> None:
        super().__init__(run_id, plan, root=root)

    def start(self) -> RunLog:
        self.started()
        return self

    def stage(self, n: int, weight: int, p95: float = 3.0, limit: float = 400.0) -> RunLog:
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:shift:{weight}", detail=f"{weight}% to dpl_new"))
        self.add(TrafficShifted(provider="dry-run", canary="dpl_new", weight=weight, verified_weight=weight))
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:hold", detail="2s: stripe_recent"))
        result = probe(p95 <= limit, p95, limit)  # a stage hold answers with every probe of the stage
        self.add(ProbesCompleted(results=[result], passed=result.passed, summary=result.summary, duration_s=2.0))
        return self

    def succeed(self) -> RunLog:
        self.add(RunFinished(outcome="succeeded", reason="every phase passed", duration_s=2700.0))
        return self

    def fail_and_roll_back(self, step: str, reason: str) -> RunLog:
        self.add(StepFailed(step=step, reason=reason))
        self.add(CompensationStarted(step="undo:stage1:shift:10", undoes="stage1:shift:10"))
        self.add(CompensationStarted(step="undo:migrate", undoes="migrate"))
        self.add(RunFinished(outcome="rolled_back", reason=reason, duration_s=30.0))
        return self
