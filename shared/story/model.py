"""The story of one run as typed, frozen values: what every output of a run renders (report, validation file, badges,
the live panel, `golive status` and `watch`, Slack). Built only by folding the run's events (shared/story/fold.py).

Derived facts (the health word, the reason with its numbers, step x of N, breach to rollback) are properties, so one
rule says each of them and every renderer reads the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from golive.shared.events import Finding
from golive.shared.judge import Reading, reading_words
from golive.shared.plan import Plan
from golive.shared.step_ref import StepRef

# What the run came to. rolling_back: a step failed and what it changed is being undone; failed: the run ended
# rolled back with nothing to undo (it failed before it changed anything that has an undo: traffic never moved).
Outcome = Literal["starting", "running", "rolling_back", "succeeded", "rolled_back", "failed", "needs_human"]
# One word for where the run stands, as `kubectl argo rollouts get rollout` users read it: Progressing (going
# forward), Paused (paused, or waiting at a gate for `golive approve`), Degraded (the go-live failed: rolling back,
# or ended with nothing to undo), Healthy (live), RolledBack (ended, what it changed undone), NeedsHuman (an undo
# failed: someone must finish it, `golive retry`).
Health = Literal["Progressing", "Paused", "Degraded", "Healthy", "RolledBack", "NeedsHuman"]
StageState = Literal["pending", "waiting", "shifting", "holding", "passed", "failed"]
ActionKind = Literal["approve", "pause", "continue", "abort", "retry"]


def stage_label(number: int, weight: int) -> str:
    """How a stage is named to people, and the label its probes carry (ProbeWindow.label): ``stage 2 (50%)``."""
    return f"stage {number} ({weight}%)"


@dataclass(frozen=True)
class PlannedStep:
    """One step of the run's plan, in the order the coordinator runs them (shared/story/outline.py)."""

    name: str
    ref: StepRef
    prompt: str = ""  # a preflight gate: what the operator confirms by approving


@dataclass(frozen=True)
class WindowStory:
    """One probe window of the step in flight or of a stage's hold: its numbers (from the prober's probe_window) and,
    once judged, the coordinator's verdict (window_judged). ``verdict`` None: measured, not judged (yet)."""

    probe: str
    index: int
    at: datetime
    verdict: Finding | None = None
    reason: str = ""
    requests: int = 0
    p95_ms: float | None = None
    error_rate_pct: float | None = None
    gauges: Mapping[str, float] = field(default_factory=dict)
    guard: bool = False
    failures: int = 0  # failed windows of the stage so far, this one included
    consecutive: int = 0  # consecutive failed windows of this probe, this one included
    readings: tuple[Reading, ...] = ()  # its numbers against the stage's limits for this probe

    @property
    def breaches(self) -> str:
        """The numbers over their limits in words ("p95 612 ms > 400 ms"); "" when none is."""
        return ", ".join(r.words() for r in self.readings if r.over)


@dataclass(frozen=True)
class CheckStory:
    """One number of a probe's totals against its limit (a preflight check, the smoke test, a stage's hold, the
    final validation, a post-deploy check). ``value`` -1: a gauge never measured."""

    where: str  # the probe's label: "smoke", "stage 2 (50%)", "final validation", "post-deploy check 1"
    stage: int | None
    probe: str
    metric: str
    value: float
    limit: float
    passed: bool
    samples: int
    at: datetime
    stopped: str | None = None  # the probe was stopped before its end (the run was rolling back)

    @property
    def name(self) -> str:
        return f"{self.where}: {self.probe} {self.metric}"

    def words(self) -> str:
        """``p95 612 ms > 400 ms``: the number against its limit, as every message says it."""
        return reading_words(self.metric, self.value, self.limit)


@dataclass(frozen=True)
class StageStory:
    """One canary stage: its plan (weight, hold, each check's limits), where it is, the weight set and read back,
    its windows and checks, and the coordinator's verdict on it (stage_judged)."""

    number: int
    weight: int
    hold_s: float
    approval: bool
    limits: Mapping[str, Mapping[str, float]]  # probe -> metric -> limit (its checks' thresholds)
    state: StageState = "pending"
    weight_set: int | None = None
    weight_read_back: int | None = None
    windows: tuple[WindowStory, ...] = ()
    checks: tuple[CheckStory, ...] = ()
    verdict: Literal["pass", "fail"] | None = None
    verdict_reason: str = ""  # stage_judged's reason as the coordinator wrote it
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def label(self) -> str:
        return stage_label(self.number, self.weight)

    @property
    def judged_windows(self) -> tuple[WindowStory, ...]:
        return tuple(w for w in self.windows if w.verdict is not None)

    @property
    def failed_windows(self) -> int:
        return sum(w.verdict == "fail" for w in self.windows)

    @property
    def inconclusive_windows(self) -> int:
        return sum(w.verdict == "inconclusive" for w in self.windows)

    @property
    def first_failure_at(self) -> datetime | None:
        """When the stage first measured a breach: its first failed window, else its first failed check."""
        times = [w.at for w in self.windows if w.verdict == "fail"] or [c.at for c in self.checks if not c.passed]
        return min(times, default=None)


@dataclass(frozen=True)
class AnalysisLimits:
    """The plan's per-window analysis (plan.analysis): a stage fails at ``failure_limit`` failed windows, or at
    ``consecutive_failure_limit`` failed windows of one check in a row."""

    interval_s: float
    min_samples: int
    failure_limit: int
    consecutive_failure_limit: int
    inconclusive: str


@dataclass(frozen=True)
class OperatorAction:
    """A person's command, recorded in the run's events: who, when, and why (an approval's ``why`` is the evidence
    they typed: `golive approve RUN --comment ...`). ``gate``: what an approval opened."""

    kind: ActionKind
    by: str
    at: datetime
    why: str = ""
    gate: str = ""

    def words(self) -> str:
        """``approved "Confirm backup completion" (maksim: snapshot 02:01 ok)``, ``paused (maksim: dashboards)``."""
        done = {"approve": "approved", "pause": "paused", "continue": "continued", "abort": "aborted",
                "retry": "retried the undo"}[self.kind]
        what = f' "{self.gate}"' if self.gate else ""
        return f"{done}{what} ({self.by}{': ' + self.why if self.why else ''})"


@dataclass(frozen=True)
class Undone:
    """One compensation: what it undid, in words, and when it was done (None: started, not done yet)."""

    undoes: str  # the step it undoes, by name
    what: str
    started_at: datetime
    done_at: datetime | None = None


@dataclass(frozen=True)
class Failure:
    """The step failure that decided the run (step_failed): which step, the one-word cause, the coordinator's reason
    (with the step's name in front, as step_failed carries it) and when."""

    step: str
    ref: StepRef
    cause: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Traffic:
    """Where the canary's traffic stands: the weight golive set and the weight the provider read back."""

    provider: str = ""
    canary: str = ""
    weight_set: int | None = None
    weight_read_back: int | None = None
    rolled_back_to: str | None = None
    promoted: bool = False


@dataclass(frozen=True)
class PhaseSpan:
    phase: str
    started_at: datetime


@dataclass(frozen=True)
class Moment:
    """One line of the run's timeline: an event that tells the story, in words."""

    at: datetime
    source: str  # the service that said it
    text: str
    failed: bool = False


@dataclass(frozen=True)
class RunStory:
    """A run's story, folded from its events: who and what, where it stands, why, per stage the numbers, the people's
    actions, the timings, what was undone and what was kept. ``RunStory()`` is the story before any event."""

    run_id: str = ""
    plan_name: str = ""
    plan: Plan | None = None
    deploy_id: str = ""
    previous_deploy_id: str | None = None
    started_at: datetime | None = None
    last_event_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None  # run_finished's
    ended: Literal["succeeded", "rolled_back", "needs_human"] | None = None  # the last run_finished's outcome
    finished_reason: str = ""  # the last run_finished's reason, as the coordinator wrote it
    # why the run stands where it does, with the deciding numbers (shared/story/reason.py): "stage 2 (50%) failed:
    # error rate 50% > 1.5% in 2 consecutive windows"; who paused it and why; the gate it waits at; "" while it runs
    reason: str = ""
    # where it stands
    steps: tuple[PlannedStep, ...] = ()
    step: str = ""  # the step in flight (or the last one, once the run ended): its name
    step_ref: StepRef | None = None
    step_detail: str = ""  # what the step asks for (phase_started's detail)
    step_started_at: datetime | None = None
    step_windows: tuple[WindowStory, ...] = ()  # the windows of the step in flight (any probe step)
    phase: str = "starting"
    phases: tuple[PhaseSpan, ...] = ()
    paused: OperatorAction | None = None
    undoing: str | None = None  # the compensation in flight: the step it undoes
    # what happened
    stages: tuple[StageStory, ...] = ()
    analysis: AnalysisLimits | None = None
    checks: tuple[CheckStory, ...] = ()  # every probe total judged, in the order measured
    failure: Failure | None = None
    actions: tuple[OperatorAction, ...] = ()
    traffic: Traffic = Traffic()
    guard_probe: str | None = None
    guard_limits: Mapping[str, float] = field(default_factory=dict)
    guard_values: Mapping[str, float] = field(default_factory=dict)  # the last value read of each guard gauge
    guard_values_at: datetime | None = None
    drop_indexes: bool = True  # plan.rollback.drop_indexes: false keeps the indexes on rollback
    indexes_built: tuple[str, ...] = ()  # indexes this run created (not those already present)
    indexes_dropped: tuple[str, ...] = ()
    undone: tuple[Undone, ...] = ()
    left_to_undo: tuple[str, ...] = ()
    rollback_verified_at: datetime | None = None  # traffic back on the previous deployment, read back
    timeline: tuple[Moment, ...] = ()

    # --- derived: one rule each -----------------------------------------------------------------------------------

    @property
    def outcome(self) -> Outcome:
        if self.ended == "rolled_back" and not self.undone:
            return "failed"
        if self.ended is not None:
            return self.ended
        if self.failure is not None or self.undoing is not None:
            return "rolling_back"
        return "running" if self.started_at is not None else "starting"

    @property
    def finished(self) -> bool:
        return self.ended is not None

    @property
    def waiting_at_gate(self) -> bool:
        return (self.step_ref is not None and self.step_ref.kind == "gate" and not self.finished
                and self.failure is None)

    @property
    def health(self) -> Health:
        outcome = self.outcome
        if outcome == "succeeded":
            return "Healthy"
        if outcome == "rolled_back":
            return "RolledBack"
        if outcome == "needs_human":
            return "NeedsHuman"
        if outcome in ("failed", "rolling_back"):
            return "Degraded"
        if self.paused is not None or self.waiting_at_gate:
            return "Paused"
        return "Progressing"

    @property
    def hold_ends_at(self) -> datetime | None:
        """When the stage hold in flight ends (its start plus the stage's hold); None when no hold is in flight."""
        if self.finished or self.failure is not None or self.step_ref is None or self.step_ref.kind != "hold":
            return None
        stage = self.stage
        if stage is None or self.step_started_at is None:
            return None
        return self.step_started_at + timedelta(seconds=stage.hold_s)

    @property
    def step_number(self) -> int:
        """The step in flight (1-based) among the plan's steps; 0 before the first."""
        names = [s.name for s in self.steps]
        return names.index(self.step) + 1 if self.step in names else 0

    @property
    def step_of(self) -> str:
        """``step 5 of 8``."""
        return f"step {self.step_number} of {len(self.steps)}"

    @property
    def stage(self) -> StageStory | None:
        """The stage in flight, or the last one the run reached."""
        reached = [s for s in self.stages if s.state != "pending"]
        return reached[-1] if reached else None

    @property
    def deciding_stage(self) -> StageStory | None:
        """The stage whose failure decided the run, if a stage's did."""
        if self.failure is None or self.failure.ref.stage is None:
            return None
        number = self.failure.ref.stage
        return self.stages[number - 1] if 0 < number <= len(self.stages) else None

    @property
    def breach_at(self) -> datetime | None:
        """When the breach that decided the run was first measured: the deciding stage's first failed window or
        check, else the failure itself."""
        if self.failure is None:
            return None
        stage = self.deciding_stage
        first = stage.first_failure_at if stage is not None else None
        return min(first, self.failure.at) if first is not None else self.failure.at

    @property
    def breach_to_rollback_s(self) -> float | None:
        """Seconds from the first measured breach to traffic back on the previous deployment, read back."""
        if (breach := self.breach_at) is None or self.rollback_verified_at is None:
            return None
        return (self.rollback_verified_at - breach).total_seconds()

    @property
    def rollback_s(self) -> float | None:
        """Seconds from the failure to the run's end (every undo done, or given up on)."""
        if self.failure is None or self.finished_at is None or self.ended == "succeeded":
            return None
        return (self.finished_at - self.failure.at).total_seconds()

    @property
    def kept(self) -> tuple[str, ...]:
        """What a failed run left in place on purpose: the indexes it built and did not drop (rollback.drop_indexes
        false)."""
        if self.outcome not in ("rolled_back", "failed", "needs_human"):
            return ()
        return tuple(i for i in self.indexes_built if i not in self.indexes_dropped)

    @property
    def failed_checks(self) -> tuple[CheckStory, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def windows(self) -> tuple[WindowStory, ...]:
        """Every judged window of every stage, in stage order."""
        return tuple(w for s in self.stages for w in s.judged_windows)
