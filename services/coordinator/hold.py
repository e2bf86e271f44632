"""A canary stage's hold: its windows judged as they close, and what an inconclusive hold does.

A hold is one RunProbes (its checks plus the guard probe). Its windows are judged as they close
(services/coordinator/analysis.py): failed windows are counted per stage, consecutive ones per check, and reaching
analysis.failure_limit or consecutive_failure_limit, or one guard window over a limit, fails the stage at once.

A hold that ends with too little evidence (analysis.inconclusive_hold) is never a quiet pass; the plan's
``analysis.inconclusive`` decides: ``pause`` (the default) holds the run as `golive pause` does, saying why with
the counts (a PauseRequested by ``golive``), until `golive continue` (the stage then passes, the continue named
in its verdict) or `golive abort`; ``fail`` counts inconclusive windows as failed ones and fails such a hold;
``extend`` sends the hold once more (same length, id suffix ``.extended``, its windows added to the same
tally and numbered on from those the hold sent: one stage's windows never share an index), then pauses if it is
still inconclusive.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from golive.services.coordinator.analysis import WindowVerdict, count_window, judge_guard, judge_window
from golive.services.coordinator.compensation import fail
from golive.services.coordinator.saga_state import EmitEvent, Output, RunState, SendCommand, analysis_of, step_command_id
from golive.services.coordinator.steps import Step
from golive.shared.commands import RunProbes
from golive.shared.events import (
    PAUSED_BY_GOLIVE,
    PauseRequested,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    ProbeWindow,
    WindowJudged,
)


def on_window(state: RunState | None, window: ProbeWindow, now: datetime) -> tuple[RunState | None, list[Output]]:
    """Judge one window of the stage hold in flight; fail the stage at once when a limit is reached.

    A window is a report, not an answer: it names the hold by ``command_id`` (no correlationid). Windows of
    other steps, of the baseline, of a finished or compensating run, or seen before change nothing."""
    if (state is None or state.finished or state.compensating or state.in_flight is None
            or window.command_id != state.in_flight or window.target != "probe"):
        return state, []
    step = state.steps[state.position]
    key = (window.probe, window.index)
    if not isinstance(step.command, RunProbes) or step.kind != "hold" or key in state.judged_windows:
        return state, []
    plan, label = state.plan, step.command.label
    if plan.guards is not None and window.probe == plan.guards.probe:
        return _judge_guard_window(state, step, window, label, now)
    check = next((p for p in step.command.probes if p.probe.name == window.probe), None)
    if plan.analysis is None or check is None:
        return state, []
    verdict = judge_window(window, check.thresholds, plan.analysis.min_samples)
    tally, limit = count_window(state.tally, window.probe, verdict.verdict, plan.analysis, verdict.why)
    streak = tally.streak(window.probe)
    word = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive"}[verdict.verdict]
    reason = f"{label}: {window.probe} window {window.index} {word}: {verdict.why}"
    if verdict.verdict != "pass" and streak > 1:
        reason += f" ({streak} consecutive)"
    state = replace(state, tally=tally, judged_windows=state.judged_windows | {key})
    judged = _judged_event(state, window, step, verdict, reason, tally.failures, streak)
    if limit is None:
        return state, [judged]
    state, failed = fail(state, f"{step.name} failed: {reason}; {limit}", now, cause="analysis")
    return state, [judged, *failed]


def _judge_guard_window(state: RunState, step: Step, window: ProbeWindow, label: str,
                        now: datetime) -> tuple[RunState, list[Output]]:
    """A guard window over any limit fails the stage at once: replica lag or a full pool does not wait for a streak."""
    assert state.plan.guards is not None  # guard windows come only from a plan with guards
    verdict = judge_guard(window, state.plan.guards.limits())
    word = {"pass": "within limits", "fail": "breached", "inconclusive": "inconclusive"}[verdict.verdict]
    reason = f"{label}: guard {window.probe} window {window.index} {word}: {verdict.why}"
    # an unread guard is evidence wanting, as a thin check window is: counted by the same inconclusive policy
    tally, limit = count_window(state.tally, window.probe, verdict.verdict, analysis_of(state), verdict.why)
    state = replace(state, tally=tally, judged_windows=state.judged_windows | {(window.probe, window.index)})
    streak = tally.streak(window.probe) if verdict.verdict != "fail" else 0
    judged = _judged_event(state, window, step, verdict, reason, tally.failures, streak, guard=True)
    if verdict.verdict == "fail":
        state, failed = fail(state, f"{step.name} failed: {reason}", now, cause="guard")
    elif limit is not None:
        state, failed = fail(state, f"{step.name} failed: {reason}; {limit}", now, cause="inconclusive")
    else:
        return state, [judged]
    return state, [judged, *failed]


def _judged_event(state: RunState, window: ProbeWindow, step: Step, verdict: WindowVerdict, reason: str, failures: int,
                  streak: int, guard: bool = False) -> EmitEvent:
    return EmitEvent(
        f"{state.run_id}/judged/{window.command_id}/{window.probe}/{window.index}",
        WindowJudged(step=step.name, at=step.ref, probe=window.probe, index=window.index, verdict=verdict.verdict, reason=reason,
                     count=verdict.count, p95_ms=verdict.p95_ms, error_rate_pct=verdict.error_rate_pct,
                     failures=failures, consecutive_failures=streak, guard=guard),
    )


def on_inconclusive_hold(state: RunState, step: Step, answer: ProbeCompleted | ProbesCompleted, why: str,
                         now: datetime) -> tuple[RunState, list[Output]]:
    """A hold that ended with too little evidence (``answer``): fail it, hold once more, or pause, as the plan's
    policy says."""
    assert isinstance(step.command, RunProbes)  # a hold is one RunProbes
    policy = analysis_of(state).inconclusive
    reason = f"{step.command.label} inconclusive: {why}"
    if policy == "fail":
        return fail(state, f"{step.name} failed: {reason}", now, cause="inconclusive", probes_ended=True)
    if policy == "extend" and not state.extended:
        # the same hold again under an id of its own; its windows add to this hold's tally (the evidence grows), so
        # the windows judged stay judged: the extension's are numbered after them
        extension = _extension(step.command, answer)
        state = replace(state, extension=extension, attempt=1)
        command_id = step_command_id(state, state.position)
        state = replace(state, in_flight=command_id,
                        deadline=now + timedelta(seconds=step.work_s + state.plan.timeouts.step))
        detail = f"extended by {step.command.duration_s:g}s to collect evidence: {reason}"
        return state, [EmitEvent(f"{state.run_id}/extend/{state.position}",
                                 PhaseStarted(phase=step.phase, step=step.name, at=step.ref, detail=detail)),
                       SendCommand(command_id, extension)]
    if policy == "extend":
        reason += f" (after holding {step.command.duration_s:g}s more)"
    state = replace(state, paused_by=f"{PAUSED_BY_GOLIVE}: {reason}", paused_at=now, held_next=state.position + 1,
                    in_flight=None, deadline=None, inconclusive=reason)
    # the pause as an event: the story and the CLI show it as any pause, with `golive continue RUN`; Slack tells it
    # (run_paused) with continue and abort. Folded here, it changes nothing: the run is paused already.
    paused = PauseRequested(reason=reason, requested_by=PAUSED_BY_GOLIVE)
    return state, [EmitEvent(f"{state.run_id}/inconclusive/{state.position}", paused)]


def _extension(hold: RunProbes, answer: ProbeCompleted | ProbesCompleted) -> RunProbes:
    """The hold sent once more, each probe's windows numbered on from those the hold sent (its answer counts them,
    results in the order of the probes): the run's story keys a stage's windows by probe and index, and an
    extension numbered from 0 again overwrote the hold's first windows there."""
    results = answer.results if isinstance(answer, ProbesCompleted) else [answer]
    sent = [result.windows for result in results] + [0] * (len(hold.probes) - len(results))
    probes = [probe.model_copy(update={"first_window": probe.first_window + windows})
              for probe, windows in zip(hold.probes, sent)]
    return hold.model_copy(update={"probes": probes})
