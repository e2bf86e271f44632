"""Moments worth a message: the notifier's pure view of a run, folded from the run's events.

``observe(view, envelope) -> (view, moments)`` is a pure function, as the coordinator's decide() is: a
notifier that restarts rebuilds the same view by replaying the run's events, dropping the moments.

Moments (the kinds a plan routes): run_started, phase_started, stage_passed, rollback_started,
run_succeeded, run_rolled_back, needs_human, run_paused (golive paused the run itself: a stage's hold was
inconclusive; a person's own pause is no message); after a run succeeded, its post-deploy watch's
watch_breached and watch_summary. A stage has passed when the coordinator says so (StageJudged, verdict
pass): the notifier tells what was decided, it never infers it. Runs stored before that event tell no stage_passed.
Which stage a step belongs to is a field of the events (``where.stage``), never read from a step's name.

The view also keeps what a message must say so that it tells what happened rather than what usually happens:
whether traffic was ever touched (a shift step began: before that a failed run changed no traffic, and its
messages say so instead of announcing a rollback), the traffic rollback as read back and how long after the
failure it came, the indexes this run built and whether its rollback dropped or kept them, and who approved a
gate (with what they typed), paused, continued or aborted the run, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.envelope import Envelope
from shared.events import (
    PAUSED_BY_GOLIVE,
    AbortRequested,
    ApprovalGranted,
    CompensationStarted,
    ContinueRequested,
    MigrationsApplied,
    MigrationsReverted,
    PauseRequested,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RetryRequested,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    TrafficRolledBack,
    TrafficShifted,
    WatchBreached,
    WatchEnded,
    WatchSummary,
)
from shared.judge import reading_words
from shared.plan import Plan, plan_of
from shared.plan.canary import Stage
from shared.plan.checks import Gate
from shared.plan.notifications import Notifications
from shared.plan.window import Window
from shared.story import RunStory
from shared.story import fold as fold_story

_AFTER_A_SHIFT = ("shift", "hold", "validate", "promote")  # the kinds of step that run with traffic on the canary


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
class TrafficBack:
    """The traffic rollback as the traffic service read it back."""

    to: str
    canary: str
    verified_weight: int
    changed: bool
    at: datetime


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
    failed_at_time: datetime | None = None  # when the coordinator failed the step (the breach, as judged)
    shift_begun: bool = False  # a traffic shift step began: from then on traffic may have moved
    traffic_back: TrafficBack | None = None
    built: tuple[str, ...] = ()  # indexes this run built (not those already there)
    migrate_begun: bool = False
    migrated: bool = False  # the migrations answered (MigrationsApplied): ``built`` is then the whole list
    dropped: tuple[str, ...] = ()
    reverted: bool = False  # the migrations' compensation ran (rollback.drop_indexes: true)
    preflight_gates: int = 0  # preflight gates begun: the current one is the plan's gate of that number
    gate: str = ""  # the gate the run waits at now, as people read it
    approvals: tuple[str, ...] = ()  # "Confirm backup completion: approved by alice: “snapshot 42 verified”"
    operator_actions: tuple[str, ...] = ()  # pauses, continues, aborts and retries, with who and why
    stage_verdicts: tuple[tuple[int, str], ...] = ()  # the coordinator's StageJudged, in order
    # the run's story (shared/story/), for what every output of a run must say alike: breach to rollback
    story: RunStory = field(default_factory=RunStory)

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
            story=fold_story(RunStory(), envelope),
        )
        return view, [_moment("run_started", view, envelope)]
    if view is None:
        return view, []
    view = replace(view, story=fold_story(view.story, envelope))
    if view.outcome is not None:
        return _after_the_run(view, envelope)
    moments: list[Moment] = []
    if isinstance(data, PhaseStarted):
        view = replace(view, phase=data.phase, step=data.step, detail=data.detail, stage=data.where.stage or 0)
        view = _at_step(view, data)
        moments.append(_moment("phase_started", view, envelope))
    elif isinstance(data, StageJudged):
        view = replace(view, stage_verdicts=view.stage_verdicts + ((data.stage, data.verdict),))
        if data.verdict == "pass":  # a failed stage is told by rollback_started, with its reason
            moments.append(_moment("stage_passed", view, envelope, stage_number=data.stage))
    elif isinstance(data, TrafficShifted):  # said by its step's start already, unless this view missed that
        view = replace(view, shift_begun=True)
    elif isinstance(data, TrafficRolledBack):
        back = TrafficBack(to=data.to or view.previous_deploy_id or "", canary=data.canary,
                           verified_weight=data.verified_weight, changed=data.changed, at=envelope.time)
        view = replace(view, traffic_back=back)
    elif isinstance(data, MigrationsApplied):
        built = tuple(r.index for r in data.results if r.index and r.action in ("built", "rebuilt_invalid"))
        view = replace(view, built=view.built + tuple(i for i in built if i not in view.built), migrated=True)
    elif isinstance(data, MigrationsReverted):
        view = replace(view, reverted=True, dropped=view.dropped + tuple(data.dropped))
    elif isinstance(data, ApprovalGranted):
        gate = view.gate or (f"stage {data.stage} gate" if data.stage else "gate")
        typed = f": “{data.comment}”" if data.comment else " (nothing typed)"
        view = replace(view, approvals=view.approvals + (f"{gate}: approved by {data.approved_by}{typed}",))
    elif isinstance(data, PauseRequested):
        view = _acted(view, f"paused by {data.requested_by} at {view.step or 'the start'}", data.reason)
        if data.requested_by == PAUSED_BY_GOLIVE:  # no person paused it: tell the people who must look
            moments.append(_moment("run_paused", view, envelope, reason=data.reason))
    elif isinstance(data, ContinueRequested):
        view = _acted(view, f"continued by {data.requested_by}", data.reason)
    elif isinstance(data, AbortRequested):
        view = _acted(view, f"aborted by {data.requested_by} at {view.step or 'the start'}", data.reason)
    elif isinstance(data, RetryRequested):
        view = _acted(view, f"retried by {data.requested_by}", data.reason)
    elif isinstance(data, ProbeCompleted):
        view = replace(view, results=view.results + (_result(view, data),))
    elif isinstance(data, ProbesCompleted):  # a stage hold: every probe of the stage is one of its checks
        view = replace(view, results=view.results + tuple(_result(view, r) for r in data.results))
    elif isinstance(data, StepFailed):
        # a step that only runs once traffic was shifted (a hold, final validation, lock-in) tells it too, also
        # for a run whose shift's start this view missed
        moved = view.shift_begun or data.where.kind in _AFTER_A_SHIFT
        view = replace(view, failed_step=data.step, failed_stage=data.where.stage, reason=data.reason,
                       compensating=True, failed_at_time=envelope.time, shift_begun=moved)
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


def _at_step(view: RunView, data: PhaseStarted) -> RunView:
    """What a step's start tells beyond its name: traffic may move from the first shift on; a gate is waited at."""
    where = data.where
    if where.undoing:
        return view
    if where.kind == "shift":
        view = replace(view, shift_begun=True)
    if where.kind == "migrate":
        view = replace(view, migrate_begun=True)
    if where.kind != "gate":
        return replace(view, gate="")
    if where.stage is not None:
        return replace(view, gate=f"stage {where.stage} gate")
    # the preflight gates begin in plan order: the n-th one begun is the plan's n-th gate
    gates = [item.gate for item in view.plan.preflight if isinstance(item, Gate)]
    number = view.preflight_gates + 1
    prompt = gates[number - 1] if number <= len(gates) else "preflight gate"
    return replace(view, preflight_gates=number, gate=prompt)


def _acted(view: RunView, what: str, why: str) -> RunView:
    return replace(view, operator_actions=view.operator_actions + (f"{what}: {why}" if why else what,))


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
        "failed_where": _failed_where(view),
        "failed_checks": failing,
        "reason": view.reason,
        "undone": list(view.undone),
        "outcome": view.outcome or "",
        "duration_s": view.duration_s,
        "duration": _duration(view.duration_s),
        "left_to_undo": list(view.left_to_undo),
        # what happened, in words (see the module's docstring): templates pick from these rather than assume
        "why": _why(view),
        "traffic_moved": view.shift_begun,
        "nothing_changed": _nothing_changed(view),
        "traffic_back": _traffic_back(view),
        "breach_to_rollback": _breach_to_rollback(view),
        "indexes": _indexes(view),
        "undone_text": _undone_text(view),
        "rollback_action": _rollback_action(view),
        "decided": _decided(view, number),
        "approvals": list(view.approvals),
        "approvals_text": "; ".join(view.approvals),
        "operator_actions": list(view.operator_actions),
        "operator_text": "; ".join(view.operator_actions),
        "event": {"id": envelope.id, "type": envelope.type, "time": envelope.time.isoformat(),
                  "data": data.model_dump(mode="json")},
    }


def _progress(stages: list[Stage], current: int, view: RunView, passed: bool = False) -> str:
    """``10% ✓ → 50% ✗ → 100%``: each stage as the coordinator judged it (StageJudged), the failed one crossed as
    soon as its step failed, the current one marked. Runs stored before stages were judged: ticked up to the
    current stage."""
    judged = dict(view.stage_verdicts)
    marks = []
    for n, stage in enumerate(stages, start=1):
        if n in judged:
            mark = "✓" if judged[n] == "pass" else "✗"
        elif view.compensating and view.failed_stage == n:
            mark = "✗"
        elif not judged and (view.outcome == "succeeded" or n < current or (passed and n == current)):
            mark = "✓"
        elif n == current and view.outcome is None and not view.compensating:
            mark = "…"
        else:
            mark = ""
        marks.append(f"{stage.weight}%{(' ' + mark) if mark else ''}")
    return " → ".join(marks)


def _why(view: RunView) -> str:
    """The reason without the failed step's name, nor its stage, in front (the messages say where it failed)."""
    if not view.failed_step:
        return view.reason
    return view.reason.removeprefix(f"{view.failed_step} failed: ").removeprefix(f"{_failed_where(view)}: ")


def _traffic_back(view: RunView) -> str:
    """The traffic rollback as read back, or why there is none."""
    back = view.traffic_back
    if back is None:
        return "" if view.shift_begun else "traffic never moved"
    if not back.changed:
        return f"traffic unchanged: this run never moved it ({back.canary} read back at {back.verified_weight}%)"
    return f"traffic back on {back.to or 'the previous deployment'}, {back.canary} read back at {back.verified_weight}%"


def _breach_to_rollback(view: RunView) -> str:
    """How long after the breach was first measured traffic was back (read back), e.g. ``1.2 s``: the story's
    figure, the one the reports give."""
    back = view.traffic_back
    if back is None or not back.changed or (seconds := view.story.breach_to_rollback_s) is None:
        return ""
    return _seconds(seconds)


def _migrate_unsure(view: RunView) -> bool:
    """The migrations began and never answered (they failed or timed out): some indexes may have been built."""
    return view.migrate_begun and not view.migrated


def _nothing_changed(view: RunView) -> bool:
    return not view.shift_begun and not view.built and not _migrate_unsure(view)


def _indexes(view: RunView) -> str:
    """What became of the indexes this run built: kept (and why), dropped, or still to drop."""
    unsure = _migrate_unsure(view)
    if not view.built and not unsure:
        return ""
    built = ", ".join(view.built) if view.built else "those built before the migrations failed"
    if not view.plan.rollback.drop_indexes:
        return f"kept {built} (rollback.drop_indexes: false)"
    if not view.reverted:
        return f"to drop: {built}"
    kept = [i for i in view.built if i not in view.dropped]
    dropped = f"dropped {', '.join(view.dropped)}" if view.dropped else "none dropped"
    return dropped + (f"; kept {', '.join(kept)}" if kept else "")


def _undone_text(view: RunView) -> str:
    """What a rolled-back run changed and undid: ``nothing changed``, or traffic and indexes as they were left."""
    if _nothing_changed(view):
        return "nothing changed"
    parts = []
    traffic = _traffic_back(view)
    if traffic:
        took = _breach_to_rollback(view)
        parts.append(traffic + (f", {took} after the breach was measured" if took else ""))
    if indexes := _indexes(view):
        parts.append(f"indexes {indexes}")
    return "; ".join(parts)


def _rollback_action(view: RunView) -> str:
    """What the rollback about to run will do (told when the step fails, before it runs)."""
    indexes = ""
    if view.built or _migrate_unsure(view):
        built = ", ".join(view.built) if view.built else "built before the migrations failed"
        indexes = (f"indexes {built} kept (rollback.drop_indexes: false)"
                   if not view.plan.rollback.drop_indexes else f"drop indexes {built}")
    if not view.shift_begun:
        return f"Nothing to roll back in traffic: it never moved{'; ' + indexes if indexes else ''}"
    previous = f" {view.previous_deploy_id}" if view.previous_deploy_id else ""
    return f"Rollback to previous deployment{previous}" + (f"; {indexes}" if indexes else "")


def _decided(view: RunView, number: int) -> str:
    """The numbers that decided: a failure's reason, or the checks of the stage that passed last."""
    if view.reason and view.outcome != "succeeded":
        return _why(view)
    passed = [n for n, verdict in view.stage_verdicts if verdict == "pass"] or ([number] if number else [])
    if not passed:
        return ""
    last = passed[-1]
    checks = [r for r in view.results if r.stage == last]
    weight = f" ({view.stages[last - 1].weight}%)" if last <= len(view.stages) else ""
    return f"stage {last}{weight}: " + ("; ".join(r.text for r in checks) or "no checks")


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else _duration(seconds)


def _failed_at(view: RunView) -> str:
    number = view.failed_stage
    if number and number <= len(view.stages):
        return f"stage {number} ({view.stages[number - 1].weight}%): {view.failed_step}"
    return view.failed_step


def _failed_where(view: RunView) -> str:
    """Where the run failed, as people read it: ``stage 2 (50%)``, or the step outside the canary."""
    number = view.failed_stage
    if number and number <= len(view.stages):
        return f"stage {number} ({view.stages[number - 1].weight}%)"
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
