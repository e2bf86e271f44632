"""A run's events as the coordinator and the services publish them, built without a bus (for the notifier's tests)."""

from __future__ import annotations

from golive.services.notifier.moments import observe
from golive.services.notifier.routing import routes_for
from golive.services.notifier.sinks import sink_for
from golive.services.notifier.templates import render_moment
from golive.shared.events import (
    CompensationStarted,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    StageJudged,
    StepFailed,
    StepRef,
    TrafficShifted,
    Verdict,
)
from golive.shared.step_ref import StepKind
from tests.builders import RunEvents, carried, skeleton_dict


def posts(log: RunEvents) -> list[tuple[str, str, dict]]:
    """(kind, sink, JSON body) of every post the notifier would make for the run's events, in order."""
    view, out = None, []
    for envelope in log.events:
        view, moments = observe(view, envelope)
        for moment in moments:
            for route in routes_for(view.notifications, moment.kind):
                notice = render_moment(view.notifications, route.template, moment.kind, moment.context, moment.event)
                if route.admits(notice.severity):
                    body = sink_for(view.notifications.sinks[route.sink]).outbound(notice).body
                    out.append((moment.kind, route.sink, body))
    return out


def fields(body: dict) -> dict[str, str]:
    """A Slack attachment message's fields, title: value."""
    return {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}


def by_kind(sent: list[tuple[str, str, dict]], kind: str) -> list[dict]:
    return [body for k, _sink, body in sent if k == kind]


def plan_dict(**notifications) -> dict:
    """The skeleton plan, validated, with ``notifications`` keys replaced."""
    return carried(skeleton_dict(edit=lambda plan: plan["notifications"].update(notifications)))


def probe(passed: bool, p95: float, limit: float = 400.0) -> ProbeCompleted:
    return ProbeCompleted(
        probe="stripe_recent", label="", count=300, errors=0, p50_ms=1.0, p95_ms=p95, p99_ms=p95 + 1, max_ms=p95 + 2,
        duration_s=2.0, verdicts=[Verdict(metric="p95_ms", limit=limit, observed=p95, passed=passed)], passed=passed,
        summary=f"p95 {p95:.2f} {'<=' if passed else '>'} {limit:g} over 300 requests",
    )


def at_stage(n: int, kind: StepKind, undoing: bool = False) -> StepRef:
    """The fields of stage ``n``'s step of ``kind``, as the coordinator sends them with the step."""
    return StepRef(phase="canary", kind=kind, stage=n, undoing=undoing)


class RunLog(RunEvents):
    """One run's events, one second apart, as today's coordinator and services publish them: stages that pass (the
    coordinator's StageJudged) or breach, a success or a rollback."""

    def __init__(self, run_id: str = "run-n1", plan: dict | None = None, root: str = "golive") -> None:
        super().__init__(run_id, plan, root=root)

    def start(self) -> RunLog:
        self.started()
        return self

    def stage(self, n: int, weight: int, p95: float = 3.0, limit: float = 400.0) -> RunLog:
        """Stage ``n``: its shift and its hold; judged passed by the coordinator when its p95 is within ``limit``
        (a breaching stage is judged when it fails: fail_and_roll_back)."""
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:shift:{weight}", at=at_stage(n, "shift"),
                              detail=f"{weight}% to dpl_new"))
        self.add(TrafficShifted(provider="dry-run", canary="dpl_new", weight=weight, verified_weight=weight))
        self.add(PhaseStarted(phase="canary", step=f"stage{n}:hold", at=at_stage(n, "hold"), detail="2s: stripe_recent"))
        result = probe(p95 <= limit, p95, limit)  # a stage hold answers with every probe of the stage
        self.add(ProbesCompleted(results=[result], passed=result.passed, summary=result.summary, duration_s=2.0))
        if result.passed:
            self.add(StageJudged(stage=n, weight=weight, verdict="pass", reason=f"stage{n}:hold passed: {result.summary}"))
        return self

    def succeed(self) -> RunLog:
        self.add(RunFinished(outcome="succeeded", reason="every phase passed", duration_s=2700.0))
        return self

    def fail_and_roll_back(self, step: str, reason: str, at: StepRef, weight: int) -> RunLog:
        """``step`` (its fields ``at``, a step of the stage of ``weight``) fails; the run rolls back."""
        self.add(StepFailed(step=step, at=at, reason=reason))
        if at.stage is not None:
            self.add(StageJudged(stage=at.stage, weight=weight, verdict="fail", reason=reason))
        self.add(CompensationStarted(step="undo:stage1:shift:10", at=at_stage(1, "shift", undoing=True),
                                     undoes="stage1:shift:10"))
        self.add(CompensationStarted(step="undo:migrate", at=StepRef(phase="migrate", kind="migrate", undoing=True),
                                     undoes="migrate"))
        self.add(RunFinished(outcome="rolled_back", reason=reason, duration_s=30.0))
        return self
