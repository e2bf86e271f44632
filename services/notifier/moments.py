"""Moments worth a message: the notifier's pure view of a run, folded from the run's events.

``observe(view, envelope) -> (view, moments)`` is a pure function, as the coordinator's decide() is: a
notifier that restarts rebuilds the same view by replaying the run's events, dropping the moments.

Moments (the kinds a plan routes): run_started, phase_started, stage_passed, rollback_started,
run_succeeded, run_rolled_back, needs_human, run_paused (golive paused the run itself: a stage's hold was
inconclusive; a person's own pause is no message); after a run succeeded, its post-deploy watch's
watch_breached and watch_summary. A stage has passed when the coordinator says so (StageJudged, verdict
pass): the notifier tells what was decided, it never infers it. Runs stored before that event tell no stage_passed.
Which stage a step belongs to is a field of the events (``where.stage``), never read from a step's name.

The view (run_view.py) keeps what a message must say so that it tells what happened rather than what usually
happens; what each message may say, in words, is message_context.py's ``run_context``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from golive.services.notifier.message_context import run_context
from golive.services.notifier.run_view import ProbeResult, RunView, TrafficBack
from golive.shared.envelope import Envelope
from golive.shared.events import (
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
from golive.shared.plan import plan_of
from golive.shared.plan.checks import Gate
from golive.shared.story import RunStory
from golive.shared.story import fold as fold_story

_AFTER_A_SHIFT = ("shift", "hold", "validate", "promote")  # the kinds of step that run with traffic on the canary


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
