"""Moments worth a message: the notifier's pure view of a run, folded from the run's events.

``observe(view, envelope) -> (view, moments)`` is a pure function, as the coordinator's decide() is: a
notifier that restarts rebuilds the same view by replaying the run's events, dropping the moments.

Moments (the kinds a plan routes): run_started, phase_started, stage_passed, rollback_started,
run_succeeded, run_rolled_back, needs_human; after a run succeeded, its post-deploy watch's
watch_breached and watch_summary. A stage has passed when the coordinator says so (StageJudged, verdict
pass): the notifier tells what was decided, it never infers it. Runs stored before that event tell no stage_passed.
Which stage a step belongs to is a field of the events (``where.stage``), never read from a step's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.envelope import Envelope
from shared.events import (
    CompensationStarted,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    WatchBreached,
    WatchEnded,
    WatchSummary,
)
from shared.judge import reading_words
from shared.plan import Plan, plan_of
from shared.plan.canary import Stage
from shared.plan.notifications import Notifications
from shared.plan.window import Window


@dataclass(frozen=True)
class ProbeResult:
    """One check's measured values, as templates see them."""

    step: str
    stage: int | None  # the canary stage whose step measured it
    probe: str
    label: str
    passed: bool
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    summary: str
    verdicts: tuple[dict[str, Any], ...]

    @property
    def text(self) -> str:
        """``stripe_recent p95 3.2 ms <= 400 ms, error rate 0% <= 1% over 120 requests`` (shared/judge.py's words)."""
        judged = ", ".join(reading_words(v["metric"], v["observed"], v["limit"]) for v in self.verdicts)
        return f"{self.probe} {judged or f'p95 {self.p95_ms:g} ms'} over {self.count + self.errors:,} requests"


@dataclass(frozen=True)
class RunView:
    """What the notifier knows of one run."""

    run_id: str
    plan_name: str
    plan: Plan
    deploy_id: str
    previous_deploy_id: str | None
    started_at: datetime
    phase: str = ""
    step: str = ""
    detail: str = ""
    stage: int = 0  # the stage whose steps run now; 0 before the canary
    results: tuple[ProbeResult, ...] = ()
    failed_step: str = ""
    failed_stage: int | None = None  # the canary stage of the failed step
    reason: str = ""
    compensating: bool = False
    undone: tuple[str, ...] = field(default=())
    outcome: str | None = None
    duration_s: float = 0.0
    left_to_undo: tuple[str, ...] = ()
    watch_ended: bool = False

    @property
    def notifications(self) -> Notifications:
        return self.plan.notifications

    @property
    def watching(self) -> bool:
        """A succeeded run whose plan has a post-deploy watch still going: its breaches are still to tell."""
        return self.outcome == "succeeded" and self.plan.post_deploy is not None and not self.watch_ended

    @property
    def stages(self) -> list[Stage]:
        return self.plan.canary.stages


@dataclass(frozen=True)
class Moment:
    """A kind of message due, the event that caused it, and the whole run context for templates."""

    kind: str
    event: Envelope
    context: dict[str, Any]


def observe(view: RunView | None, envelope: Envelope) -> tuple[RunView | None, list[Moment]]:
    """Fold one event into the run's view; return the new view and the moments it makes due."""
    data = envelope.data
    if isinstance(data, RunStarted):
        if view is not None:
            return view, []  # a duplicate start
        view = RunView(  # the run's plan in today's version, whatever version it was stored in
            run_id=envelope.runid, plan_name=data.plan_name, plan=plan_of(data), deploy_id=data.deploy_id,
            previous_deploy_id=data.previous_deploy_id, started_at=envelope.time,
        )
        return view, [_moment("run_started", view, envelope)]
    if view is not None and view.outcome is not None:
        return _after_the_run(view, envelope)
    if view is None:
        return view, []
    moments: list[Moment] = []
    if isinstance(data, PhaseStarted):
        view = replace(view, phase=data.phase, step=data.step, detail=data.detail, stage=data.where.stage or 0)
        moments.append(_moment("phase_started", view, envelope))
    elif isinstance(data, StageJudged):
        if data.verdict == "pass":  # a failed stage is told by rollback_started, with its reason
            moments.append(_moment("stage_passed", view, envelope, stage_number=data.stage))
    elif isinstance(data, ProbeCompleted):
        view = replace(view, results=view.results + (_result(view, data),))
    elif isinstance(data, ProbesCompleted):  # a stage hold: every probe of the stage is one of its checks
        view = replace(view, results=view.results + tuple(_result(view, r) for r in data.results))
    elif isinstance(data, StepFailed):
        view = replace(view, failed_step=data.step, failed_stage=data.where.stage, reason=data.reason,
                       compensating=True)
        moments.append(_moment("rollback_started", view, envelope))
    elif isinstance(data, CompensationStarted):
        view = replace(view, undone=view.undone + (data.undoes,))
    elif isinstance(data, RunFinished):
        view = replace(view, outcome=data.outcome, duration_s=data.duration_s, left_to_undo=tuple(data.left_to_undo),
                       reason=view.reason or data.reason)
        if data.outcome == "succeeded":
            moments.append(_moment("run_succeeded", view, envelope))
        elif data.outcome == "rolled_back":
            moments.append(_moment("run_rolled_back", view, envelope))
        else:
            moments.append(_moment("needs_human", view, envelope))
    return view, moments


def _after_the_run(view: RunView, envelope: Envelope) -> tuple[RunView, list[Moment]]:
    """The post-deploy watch of a succeeded run: its breaches and summaries are moments; its end ends the view."""
    data = envelope.data
    if isinstance(data, WatchBreached):
        return view, [_moment("watch_breached", view, envelope, reason=data.reason)]
    if isinstance(data, WatchSummary):
        return view, [_moment("watch_summary", view, envelope, reason=data.summary)]
    if isinstance(data, WatchEnded):
        return replace(view, watch_ended=True), []
    return view, []


def _result(view: RunView, data: ProbeCompleted) -> ProbeResult:
    return ProbeResult(
        step=view.step, stage=view.stage or None, probe=data.probe, label=data.label, passed=data.passed,
        count=data.count, errors=data.errors,
        p50_ms=data.p50_ms, p95_ms=data.p95_ms, p99_ms=data.p99_ms, max_ms=data.max_ms, summary=data.summary,
        verdicts=tuple(v.model_dump() for v in data.verdicts),
    )


def _moment(kind: str, view: RunView, envelope: Envelope, stage_number: int | None = None, reason: str = "") -> Moment:
    context = run_context(view, envelope, stage_number)
    if reason:  # a watch's moment: why it is told, rather than the run's reason
        context["reason"] = reason
    return Moment(kind, envelope, context)


def run_context(view: RunView, envelope: Envelope, stage_number: int | None = None) -> dict[str, Any]:
    """Every name a template may use. Absent facts are empty, never missing, so templates stay simple."""
    stages = view.stages
    number = stage_number if stage_number is not None else view.stage
    stage = None
    if 1 <= number <= len(stages):
        spec = stages[number - 1]
        checks = [r for r in view.results if r.stage == number]
        stage = {
            "number": number, "weight": spec.weight, "hold": spec.hold,
            "thresholds": [c.thresholds.model_dump(mode="json") for c in spec.checks],
            "checks": checks, "checks_text": "; ".join(r.text for r in checks) or "no checks",
        }
    failing = [r for r in view.results if r.step == view.failed_step and not r.passed]
    spec = view.notifications
    data = envelope.data
    return {
        "run_id": view.run_id,
        "plan_name": view.plan_name,
        "plan": view.plan.model_dump(mode="json"),  # as templates have always seen it: the plan as stored
        "environment": spec.environment,
        "maintenance_window": spec.maintenance_window or _plan_window(view.plan.window),
        "report_url": spec.report_url.replace("{run_id}", view.run_id),
        "deploy_id": view.deploy_id,
        "previous_deploy_id": view.previous_deploy_id or "",
        "phase": view.phase,
        "step": view.step,
        "detail": view.detail,
        "stage": stage,
        "stages_total": len(stages),
        "weights": [s.weight for s in stages],
        "progress": _progress(stages, number, view, passed=stage_number is not None),
        "results": list(view.results),
        "failed_step": view.failed_step,
        "failed_at": _failed_at(view),
        "failed_checks": failing,
        "reason": view.reason,
        "undone": list(view.undone),
        "outcome": view.outcome or "",
        "duration_s": view.duration_s,
        "duration": _duration(view.duration_s),
        "left_to_undo": list(view.left_to_undo),
        "event": {"id": envelope.id, "type": envelope.type, "time": envelope.time.isoformat(),
                  "data": data.model_dump(mode="json")},
    }


def _progress(stages: list[Stage], current: int, view: RunView, passed: bool = False) -> str:
    """``10% ✓ → 50% ✓ → 100% …``: passed stages ticked, the current one marked, failed crossed."""
    marks = []
    for n, stage in enumerate(stages, start=1):
        if view.outcome == "succeeded" or n < current or (passed and n == current):
            mark = "✓"
        elif n == current and view.compensating and view.failed_stage == n:
            mark = "✗"
        elif n == current:
            mark = "…"
        else:
            mark = ""
        marks.append(f"{stage.weight}%{(' ' + mark) if mark else ''}")
    return " → ".join(marks)


def _failed_at(view: RunView) -> str:
    number = view.failed_stage
    if number and number <= len(view.stages):
        return f"stage {number} ({view.stages[number - 1].weight}%): {view.failed_step}"
    return view.failed_step


def _duration(seconds: float) -> str:
    """The runbook's wording: ``45 minutes``; short runs in seconds."""
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    if seconds >= 60:
        return f"{seconds / 60:.1f} minutes"
    return "1 second" if round(seconds) == 1 else f"{seconds:.0f} seconds"


def _plan_window(plan_window: Window) -> str:
    """The plan's maintenance window as the runbook writes it (``Sun 02:00-04:00 UTC``), or "" without one."""
    window = plan_window.maintenance
    if window is None:
        return ""
    days = ",".join(d.capitalize() for d in window.days)
    return f"{days} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}"
