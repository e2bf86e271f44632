"""Folding a run's events into its story, one event at a time: ``fold(story, envelope)``, so a live view keeps the
story of a run it follows and folds each new event in (shared/fold.py's RunFolds keeps such states per run), and
``story_of(events)`` for a run read whole (report, status).

Pure: the story is a function of the events in stream order, so a report rebuilt from the stream tells the same story
as the panel that watched the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from golive.shared.envelope import Envelope
from golive.shared.events import (
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
    ProbeWindow,
    RetryRequested,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
    WindowJudged,
)
from golive.shared.judge import GAUGES, SHOWN, Reading, error_rate_pct
from golive.shared.plan import Plan, plan_of
from golive.shared.story.model import (
    AnalysisLimits,
    CheckStory,
    Failure,
    Moment,
    OperatorAction,
    PhaseSpan,
    RunStory,
    StageState,
    StageStory,
    Undone,
    WindowStory,
)
from golive.shared.story.outline import outline
from golive.shared.story.reason import run_reason, step_words

# where a stage stands once one of its steps started
_STAGE_STATES: dict[str, StageState] = {"gate": "waiting", "shift": "shifting", "hold": "holding"}
# index builds that created an index (already_present: it was there before the run; executed: not an index)
_BUILT = ("built", "rebuilt_invalid")


def story_of(events: Iterable[Envelope]) -> RunStory:
    """The story of one run, from its events in stream order."""
    story = RunStory()
    for envelope in events:
        story = fold(story, envelope)
    return story


def fold(story: RunStory, envelope: Envelope) -> RunStory:
    """The story after one more event of the run."""
    story = _apply(replace(story, last_event_at=envelope.time), envelope)
    if (text := _moment(story, envelope)) is not None:
        failed = text.startswith("FAILED") or (isinstance(envelope.data, StepFailed))
        moment = Moment(envelope.time, envelope.source.rsplit("/", 1)[-1], text, failed)
        story = replace(story, timeline=(*story.timeline, moment))
    return replace(story, reason=run_reason(story))


def _apply(story: RunStory, envelope: Envelope) -> RunStory:
    d, at = envelope.data, envelope.time
    match d:
        case RunStarted():
            return _started(story, envelope, d)
        case PhaseStarted():
            return _step_started(story, d, at)
        case TrafficTargetTaken():
            return replace(story, traffic=replace(story.traffic, provider=d.provider, canary=d.canary,
                                                  weight_read_back=d.weight))
        case TrafficShifted():
            traffic = replace(story.traffic, provider=d.provider, canary=d.canary, weight_set=d.weight,
                              weight_read_back=d.verified_weight)
            story = replace(story, traffic=traffic)
            if (stage := _stage_of_step(story)) is not None:
                story = _with_stage(story, replace(stage, weight_set=d.weight, weight_read_back=d.verified_weight))
            return story
        case TrafficRolledBack():
            traffic = replace(story.traffic, provider=d.provider, canary=d.canary, weight_set=0,
                              weight_read_back=d.verified_weight, rolled_back_to=d.to)
            what = (f"traffic back on {d.to or 'the stable deployment'} (canary read back {d.verified_weight}%)"
                    if d.changed else f"traffic: nothing to undo, this run never moved it (canary at {d.verified_weight}%)")
            return _undo_done(replace(story, traffic=traffic, rollback_verified_at=at if d.changed else None), what, at)
        case TrafficPromoted():
            return replace(story, traffic=replace(story.traffic, provider=d.provider, canary=d.canary, weight_set=100,
                                                  weight_read_back=d.verified_weight, promoted=True))
        case MigrationsApplied():
            built = tuple(r.index or r.name for r in d.results if r.action in _BUILT)
            return replace(story, indexes_built=(*story.indexes_built, *built))
        case MigrationsReverted():
            dropped = tuple(d.dropped)
            kept = [r.index or r.name for r in d.results if r.action == "kept"]
            what = ("indexes dropped: " + ", ".join(dropped) if dropped else "no index to drop") + (
                "; kept: " + ", ".join(kept) if kept else "")
            return _undo_done(replace(story, indexes_dropped=(*story.indexes_dropped, *dropped)), what, at)
        case ProbeWindow() if d.target == "probe":
            return _window_measured(story, d, at)
        case WindowJudged():
            return _window_judged(story, d, at)
        case ProbeCompleted() | ProbesCompleted():
            return _checks_measured(story, d, at)
        case StageJudged():
            if not 0 < d.stage <= len(story.stages):
                return story
            stage = story.stages[d.stage - 1]
            return _with_stage(story, replace(stage, verdict=d.verdict, verdict_reason=d.reason, ended_at=at,
                                              state="passed" if d.verdict == "pass" else "failed"))
        case StepFailed():
            failure = Failure(d.step, d.where, d.cause, d.reason, at)
            story = replace(story, failure=failure, paused=None)
            if (stage := _stage_numbered(story, d.where.stage)) is not None:
                story = _with_stage(story, replace(stage, state="failed", ended_at=stage.ended_at or at))
            return story
        case CompensationStarted():
            undone = Undone(d.undoes, f"undoing {d.undoes}", at)
            return replace(story, undoing=d.undoes, phase="compensating", undone=(*story.undone, undone), step_windows=(),
                           phases=_phase_mark(story.phases, "compensating", at))
        case ApprovalGranted():
            gate = _gate_words(story, d.stage)
            return _act(story, OperatorAction("approve", d.approved_by, at, d.comment, gate))
        case PauseRequested():
            action = OperatorAction("pause", d.requested_by, at, d.reason)
            story = _act(story, action)
            return replace(story, paused=action) if story.failure is None and not story.finished else story
        case ContinueRequested():
            return replace(_act(story, OperatorAction("continue", d.requested_by, at, d.reason)), paused=None)
        case AbortRequested():
            return _act(story, OperatorAction("abort", d.requested_by, at, d.reason))
        case RetryRequested():
            story = _act(story, OperatorAction("retry", d.requested_by, at, d.reason))
            return replace(story, ended=None, finished_at=None, duration_s=None) if story.ended == "needs_human" else story
        case RunFinished():
            if d.outcome == "succeeded":
                story = _stages_passed_before(story, len(story.stages) + 1, at)
            return replace(story, ended=d.outcome, finished_reason=d.reason, duration_s=d.duration_s, finished_at=at,
                           left_to_undo=tuple(d.left_to_undo), undoing=None, paused=None, phase="done",
                           step_windows=())  # nothing is in flight once the run ended
    return story


# --- the run and its steps ----------------------------------------------------------------------------------------


def _started(story: RunStory, envelope: Envelope, d: RunStarted) -> RunStory:
    if story.started_at is not None:
        return story  # a duplicate start changes nothing, as for the coordinator
    plan = plan_of(d)
    analysis = plan.analysis
    return replace(
        story, run_id=envelope.runid, plan_name=d.plan_name, plan=plan, deploy_id=d.deploy_id,
        previous_deploy_id=d.previous_deploy_id, started_at=envelope.time, phase="preflight", steps=outline(plan),
        stages=tuple(_stage_planned(plan, n) for n in range(1, len(plan.canary.stages) + 1)),
        analysis=AnalysisLimits(analysis.interval, analysis.min_samples, analysis.failure_limit,
                                analysis.consecutive_failure_limit, analysis.inconclusive) if analysis else None,
        guard_probe=plan.guards.probe if plan.guards else None,
        guard_limits=plan.guards.limits() if plan.guards else {},
        drop_indexes=plan.rollback.drop_indexes,
        traffic=replace(story.traffic, canary=d.deploy_id),
    )


def _stage_planned(plan: Plan, number: int) -> StageStory:
    stage = plan.canary.stages[number - 1]
    limits = {c.probe: {k: float(v) for k, v in c.thresholds.model_dump(exclude_none=True).items() if k != "min_samples"}
              for c in stage.checks}
    return StageStory(number, stage.weight, float(stage.hold), stage.approval, limits)


def _step_started(story: RunStory, d: PhaseStarted, at: datetime) -> RunStory:
    ref = d.where
    story = _stages_passed_before(story, ref.stage if ref.stage is not None else
                                  len(story.stages) + 1 if ref.phase in ("final_validation", "lock_in") else 0, at)
    story = replace(story, step=d.step, step_ref=ref, step_detail=d.detail, step_started_at=at, step_windows=(),
                    phase=d.phase, phases=_phase_mark(story.phases, d.phase, at))
    if (stage := _stage_numbered(story, ref.stage)) is not None:
        state = _STAGE_STATES.get(ref.kind, stage.state)
        story = _with_stage(story, replace(stage, state=state, started_at=stage.started_at or at))
    return story


def _stages_passed_before(story: RunStory, number: int, at: datetime) -> RunStory:
    """Stages the run went past passed (events written before stage_judged say so only by going on)."""
    for stage in story.stages[:max(number - 1, 0)]:
        if stage.state in ("waiting", "shifting", "holding"):
            story = _with_stage(story, replace(stage, state="passed", ended_at=at))
    return story


def _phase_mark(phases: tuple[PhaseSpan, ...], phase: str, at: datetime) -> tuple[PhaseSpan, ...]:
    return phases if phases and phases[-1].phase == phase else (*phases, PhaseSpan(phase, at))


def _stage_numbered(story: RunStory, number: int | None) -> StageStory | None:
    return story.stages[number - 1] if number is not None and 0 < number <= len(story.stages) else None


def _stage_of_step(story: RunStory) -> StageStory | None:
    return _stage_numbered(story, story.step_ref.stage if story.step_ref else None)


def _stage_labelled(story: RunStory, label: str) -> StageStory | None:
    return next((s for s in story.stages if s.label == label), None)


def _with_stage(story: RunStory, stage: StageStory) -> RunStory:
    stages = list(story.stages)
    stages[stage.number - 1] = stage
    return replace(story, stages=tuple(stages))


# --- windows and checks -------------------------------------------------------------------------------------------


def _limits_of(story: RunStory, stage: StageStory | None, probe: str) -> Mapping[str, float]:
    if probe == story.guard_probe:
        return story.guard_limits
    return stage.limits.get(probe, {}) if stage is not None else {}


def _readings(limits: Mapping[str, float], p95_ms: float | None, error_rate: float | None,
              gauges: Mapping[str, float]) -> tuple[Reading, ...]:
    """A window's numbers against its limits: p95, error rate and the guard gauges (what a window carries)."""
    observed: dict[str, float | None] = {"p95_ms": p95_ms, "error_rate_pct": error_rate}
    observed.update({g: gauges.get(g) for g in GAUGES})
    return tuple(Reading(metric, limit, observed[metric], observed[metric] is not None)
                 for metric, limit in limits.items() if metric in observed)


def _window_measured(story: RunStory, d: ProbeWindow, at: datetime) -> RunStory:
    stats = d.stats
    if guards := _guard_gauges(stats.gauges):
        story = replace(story, guard_values={**story.guard_values, **guards}, guard_values_at=at)
    stage = _stage_labelled(story, d.label)
    rate = error_rate_pct(stats.count, stats.errors)
    limits = _limits_of(story, stage, d.probe)
    window = WindowStory(d.probe, d.index, at, requests=stats.count + stats.errors, p95_ms=stats.p95_ms,
                         error_rate_pct=rate, gauges=dict(stats.gauges), guard=d.probe == story.guard_probe,
                         readings=_readings(limits, stats.p95_ms, rate, stats.gauges))
    story = replace(story, step_windows=_upsert(story.step_windows, window))
    if stage is not None:
        story = _with_stage(story, replace(stage, windows=_upsert(stage.windows, window)))
    return story


def _window_judged(story: RunStory, d: WindowJudged, at: datetime) -> RunStory:
    stage = _stage_numbered(story, d.where.stage)
    known = next((w for w in (stage.windows if stage else story.step_windows) if (w.probe, w.index) == (d.probe, d.index)),
                 None)
    gauges = known.gauges if known is not None else {}
    p95 = d.p95_ms if d.p95_ms is not None or known is None else known.p95_ms
    rate = d.error_rate_pct if d.error_rate_pct is not None or known is None else known.error_rate_pct
    window = WindowStory(d.probe, d.index, known.at if known else at, d.verdict, d.reason, d.count or (known.requests if known else 0),
                         p95, rate, gauges, d.guard, d.failures, d.consecutive_failures,
                         _readings(_limits_of(story, stage, d.probe), p95, rate, gauges))
    story = replace(story, step_windows=_upsert(story.step_windows, window)) if story.step == d.step else story
    if stage is not None:
        story = _with_stage(story, replace(stage, windows=_upsert(stage.windows, window)))
    return story


def _guard_gauges(gauges: Mapping[str, float]) -> dict[str, float]:
    """The guard gauges among a probe's gauges (a pg_health probe also reports per-replica values and raw counts)."""
    return {name: value for name, value in gauges.items() if name in GAUGES}


def _upsert(windows: tuple[WindowStory, ...], window: WindowStory) -> tuple[WindowStory, ...]:
    for i, known in enumerate(windows):
        if (known.probe, known.index) == (window.probe, window.index):
            return (*windows[:i], window, *windows[i + 1:])
    return (*windows, window)


def _checks_measured(story: RunStory, d: ProbeCompleted | ProbesCompleted, at: datetime) -> RunStory:
    results = d.results if isinstance(d, ProbesCompleted) else [d]
    stopped = d.stopped
    checks: list[CheckStory] = []
    for result in results:
        stage = _stage_labelled(story, result.label)
        for v in result.verdicts:
            checks.append(CheckStory(result.label or "probe", stage.number if stage else None, result.probe, v.metric,
                                     round(v.observed, 3), v.limit, v.passed, result.count + result.errors, at,
                                     result.stopped or stopped))
        if result.probe == story.guard_probe and (guards := _guard_gauges(result.gauges)):
            story = replace(story, guard_values={**story.guard_values, **guards}, guard_values_at=at)
    story = replace(story, checks=(*story.checks, *checks))
    for number in sorted({c.stage for c in checks if c.stage is not None}):
        stage = story.stages[number - 1]
        story = _with_stage(story, replace(stage, checks=(*stage.checks, *(c for c in checks if c.stage == number))))
    return story


# --- people and undoing -------------------------------------------------------------------------------------------


def _act(story: RunStory, action: OperatorAction) -> RunStory:
    return replace(story, actions=(*story.actions, action))


def _gate_words(story: RunStory, stage: int | None) -> str:
    """What an approval opens: the gate the run waits at (its prompt), or the stage it names."""
    if story.waiting_at_gate and story.step_ref is not None and stage in (None, story.step_ref.stage):
        prompt = next((s.prompt for s in story.steps if s.name == story.step), "")
        return prompt or step_words(story, story.step_ref, story.step)
    return f"stage {stage}" if stage is not None else ""


def _undo_done(story: RunStory, what: str, at: datetime) -> RunStory:
    """The compensation in flight answered: what it did, in words."""
    if not story.undone or story.undone[-1].done_at is not None:
        return story
    last = replace(story.undone[-1], what=what, done_at=at)
    return replace(story, undone=(*story.undone[:-1], last))


# --- the timeline -------------------------------------------------------------------------------------------------


def _moment(story: RunStory, envelope: Envelope) -> str | None:
    """The event as a line of the run's timeline; None for what is not worth a line (passing windows, progress)."""
    d = envelope.data
    if isinstance(d, PhaseStarted):
        where = step_words(story, d.where, d.step)
        return f"{where}: {d.where.kind} {d.detail}".rstrip() if d.where.stage is not None else f"{where}: {d.detail}"
    if isinstance(d, WindowJudged) and d.verdict != "pass":
        return ("FAILED " if d.verdict == "fail" else "") + d.reason
    if isinstance(d, ProbesCompleted | ProbeCompleted):
        return f"{SHOWN[d.finding]}: {d.summary}"
    if isinstance(d, TrafficShifted):
        return f"traffic {d.weight}% to {d.canary} (read back {d.verified_weight}%)"
    if isinstance(d, TrafficRolledBack):
        return f"traffic rolled back to {d.to or 'stable'} (canary read back {d.verified_weight}%)"
    if isinstance(d, TrafficPromoted):
        return f"{d.canary} promoted: all traffic on it (read back {d.verified_weight}%)"
    if isinstance(d, MigrationsApplied):
        return "migrations: " + ", ".join(f"{r.name} {r.action} in {r.seconds:.2f}s" for r in d.results)
    if isinstance(d, MigrationsReverted):
        return "migrations undone: " + (", ".join(d.dropped) + " dropped" if d.dropped else "no index dropped")
    if isinstance(d, StageJudged) and 0 < d.stage <= len(story.stages):
        stage = story.stages[d.stage - 1]
        if d.verdict == "pass":
            return f"{stage.label} passed ({len(stage.judged_windows)} windows judged, {stage.failed_windows} failed)"
        return f"FAILED {stage.label}"
    if isinstance(d, StepFailed):
        return run_reason(story)
    if isinstance(d, CompensationStarted):
        return f"undo {d.undoes}"
    if isinstance(d, ApprovalGranted | PauseRequested | ContinueRequested | AbortRequested | RetryRequested):
        return story.actions[-1].words() if story.actions else None
    if isinstance(d, RunFinished):
        return f"run {d.outcome.replace('_', ' ')}: {run_reason(story)}"
    return None
