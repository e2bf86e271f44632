"""A run's events as the coordinator and the services publish them, built without a bus (for the notifier's tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from services.coordinator.plan import parse_plan
from shared.envelope import Envelope, Message, new_envelope
from shared.events import (
    CompensationStarted,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    RunStarted,
    StepFailed,
    TrafficShifted,
    Verdict,
)
from shared.subjects import Subjects
from tests.harness import REPO

T0 = datetime(2026, 1, 4, 2, 0, tzinfo=UTC)


def plan_dict(**notifications) -> dict:
    """The skeleton plan, validated, with ``notifications`` keys replaced."""
    data = yaml.safe_load((REPO / "plans" / "skeleton.yaml").read_text())
    data["notifications"] = {**data["notifications"], **notifications}
    return parse_plan(yaml.safe_dump(data)).model_dump(mode="json")


def probe(passed: bool, p95: float, limit: float = 400.0) -> ProbeCompleted:
    return ProbeCompleted(
        probe="stripe_recent", label="", count=300, errors=0, p50_ms=1.0, p95_ms=p95, p99_ms=p95 + 1, max_ms=p95 + 2,
        duration_s=2.0, verdicts=[Verdict(metric="p95_ms", limit=limit, observed=p95, passed=passed)], passed=passed,
        summary=f"p95 {p95:.2f} {'<=' if passed else '>'} {limit:g} over 300 requests",
    )


class RunLog:
    """Appends events of one run with increasing times and ids, like the stream holds them."""

    def __init__(self, run_id: str = "run-n1", plan: dict | None = None, root: str = "golive") -> None:
        self.run_id = run_id
        self.root = root
        self.plan = plan or plan_dict()
        self.events: list[Envelope] = []

    def add(self, data: Message, source: str = "coordinator") -> Envelope:
        n = len(self.events)
        envelope = new_envelope(data, id=f"{self.run_id}/e{n}", source=f"/golive/{source}", runid=self.run_id,
                                subject=Subjects(self.root).event(self.run_id, source, data.short_name()),
                                time=T0 + timedelta(seconds=n))
        self.events.append(envelope)
        return envelope

    def start(self) -> RunLog:
        self.add(RunStarted(plan=self.plan, plan_name="skeleton", deploy_id="dpl_new", previous_deploy_id="dpl_old"))
        return self

    def stage(self, n: int, weight: int, p95: float = 3.0, limit: float = 400.0) -> RunLog:
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:shift:{weight}", detail=f"{weight}% to dpl_new"))
        self.add(TrafficShifted(provider="dry-run", canary="dpl_new", weight=weight, verified_weight=weight), "traffic")
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:hold", detail="2s: stripe_recent"))
        result = probe(p95 <= limit, p95, limit)  # a stage hold answers with every probe of the stage
        self.add(ProbesCompleted(results=[result], passed=result.passed, summary=result.summary, duration_s=2.0), "prober")
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
