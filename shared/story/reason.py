"""Why a run stands where it does, in one line with the numbers that decided it, named the way people name the steps:
"stage 2 (50%) failed: api p95 612 ms > 400 ms in 2 consecutive windows", never "stage2:hold failed: ...".

The numbers come from the story's windows and checks against the plan's limits, worded by the one judge of
thresholds (shared/judge.py); what has no numbers (a timeout, an abort, a refused shift) keeps the coordinator's words
with the step named for people.
"""

from __future__ import annotations

from golive.shared.step_ref import StepRef
from golive.shared.story.model import Failure, RunStory, StageStory, WindowStory

_VERBS = ("failed:", "refused:", "timed out:")


def run_reason(story: RunStory) -> str:
    """The story's reason (RunStory.reason): the deciding failure with its numbers, then what went wrong undoing it
    (needs_human); who paused the run and why; the gate it waits at; the coordinator's words for a run that
    succeeded; "" for a run going on."""
    failure = story.failure
    if failure is None and story.paused is not None:
        return f"paused by {story.paused.by}" + (f": {story.paused.why}" if story.paused.why else "")
    if failure is None and story.waiting_at_gate and story.step_ref is not None:
        prompt = next((s.prompt for s in story.steps if s.name == story.step), "")
        gate = f'"{prompt}"' if prompt else step_words(story, story.step_ref, story.step)
        stage = f" --stage {story.step_ref.stage}" if story.step_ref.stage is not None else ""
        return f"waiting at {gate} for `golive approve {story.run_id}{stage}`"
    if failure is None:
        return story.finished_reason
    where = step_words(story, failure.ref, failure.step)
    numbers = _numbers(story, failure)
    if numbers:
        reason = f"{where} failed: {numbers}"
    else:
        detail = failure.reason.removeprefix(f"{failure.step} ")
        reason = f"{where} {detail}" if detail.startswith(_VERBS) else f"{where}: {detail}"
    # needs_human: run_finished says what went wrong undoing it after the failure's own words
    then = story.finished_reason.removeprefix(failure.reason) if story.finished_reason.startswith(failure.reason) else ""
    return reason + then


def step_words(story: RunStory, ref: StepRef, name: str = "") -> str:
    """A step as people name it: ``stage 2 (50%)``, ``smoke test api``, ``the final validation``."""
    if ref.stage is not None:
        stage = story.stages[ref.stage - 1] if 0 < ref.stage <= len(story.stages) else None
        return stage.label if stage is not None else f"stage {ref.stage}"
    words = {
        "gate": "the preflight gate", "check": f"preflight check {ref.probe}", "migrate": "the migrations",
        "smoke": f"smoke test {ref.probe}", "validate": "the final validation", "promote": "lock-in",
        "take": "taking the traffic target",
    }
    return words.get(ref.kind, name or "a step")


def _numbers(story: RunStory, failure: Failure) -> str:
    """The deciding numbers against their limits, for a failure decided by numbers; "" otherwise."""
    stage = story.deciding_stage
    if failure.cause == "analysis" and stage is not None:
        return _streak(story, stage)
    if failure.cause == "guard" and stage is not None:
        breached = [w for w in stage.windows if w.guard and w.verdict == "fail"]
        if breached and (words := breached[-1].breaches or _why(breached[-1])):
            return f"guard {breached[-1].probe} {words}"
    if failure.cause == "threshold":
        measured = [c for c in story.checks if c.at <= failure.at]
        last = max((c.at for c in measured), default=None)
        failed = [c for c in measured if c.at == last and not c.passed]
        if failed:
            return "; ".join(f"{c.probe} {c.words()} over {c.samples:,} requests" for c in failed)
    return ""


def _streak(story: RunStory, stage: StageStory) -> str:
    """The stage's failed windows as the limit they reached: "api p95 612 ms > 400 ms in 2 consecutive windows"."""
    failed = [w for w in stage.windows if w.verdict == "fail" and not w.guard]
    if not failed:
        return ""
    last = failed[-1]
    words = last.breaches or _why(last)
    limits = story.analysis
    if limits is not None and last.consecutive >= limits.consecutive_failure_limit:
        return f"{last.probe} {words} in {last.consecutive} consecutive windows"
    judged = sum(1 for w in stage.windows if w.verdict is not None and not w.guard)
    return f"{last.probe} {words} in {last.failures} of {judged} windows"


def _why(window: WindowStory) -> str:
    """A window's verdict in the coordinator's words, without its label and index in front."""
    return window.reason.rpartition(f"window {window.index} ")[2] or window.reason
