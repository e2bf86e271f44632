"""A run as the saga holds it (RunState), what decide() returns (outputs), and the questions asked of a state.

Pure data and pure queries: which step is in flight, which command the run awaits and under which id, whether the
run is held by a pause. The modules that change a run (services/coordinator/saga.py and the ones it dispatches
to) all read a state through these, so that a command id or "paused" means one thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from golive.services.coordinator.analysis import StageTally
from golive.services.coordinator.steps import Step
from golive.shared.commands import RunProbes, ShiftTraffic, TakeTrafficTarget
from golive.shared.envelope import Message
from golive.shared.events import StepRef
from golive.shared.plan import Plan
from golive.shared.plan.canary import Analysis

TAKE_STEP = "traffic:take"


@dataclass(frozen=True)
class Compensation:
    undoes: str
    command: Message
    ref: StepRef  # the step it undoes, as its compensation


@dataclass(frozen=True)
class Tick:
    """The shell's clock, fed in so that decide() stays pure."""

    now: datetime


@dataclass(frozen=True)
class SendCommand:
    id: str
    data: Message


@dataclass(frozen=True)
class EmitEvent:
    id: str
    data: Message
    correlationid: str | None = None  # default: that of the input that caused it


@dataclass(frozen=True)
class StopProbes:
    """Stop the probes of command ``command_id`` now (the run failed while they ran): the shell publishes a
    golive.shared.commands.StopProbe on core NATS, so the prober stops measuring for a run that is rolling back."""

    command_id: str
    reason: str


Output = SendCommand | EmitEvent | StopProbes


@dataclass(frozen=True)
class RunState:
    run_id: str
    plan: Plan
    deploy_id: str
    previous_deploy_id: str | None
    started_at: datetime
    steps: tuple[Step, ...]
    position: int = -1  # index of the step in flight
    in_flight: str | None = None  # id of the command awaited
    deadline: datetime | None = None
    compensations: tuple[Compensation, ...] = ()
    compensating: bool = False
    failure: str | None = None
    outcome: str | None = None
    notes: tuple[str, ...] = field(default=())
    attempt: int = 1  # of the command in flight
    window_cutoff: datetime | None = None  # past it, the run rolls back so the rollback fits in the window
    failed_at: datetime | None = None
    retry_at: datetime | None = None  # set while waiting out a backoff
    # per-window analysis of the stage hold in flight (reset with each step): its failed windows, and the
    # windows judged (probe, index), so that a redelivered window is not counted twice
    tally: StageTally = StageTally()
    judged_windows: frozenset[tuple[str, int]] = frozenset()
    # operator controls: `golive pause` / `continue` / `retry`
    paused_by: str | None = None  # "maksim: looking at the dashboards" while paused
    paused_at: datetime | None = None
    held_next: int | None = None  # the step a paused run would have sent next, kept until continue
    retry_round: int = 0  # `golive retry` rounds: the compensations sent again need ids of their own
    take: TakeTrafficTarget | None = None  # the run's first traffic step, sent before step 0 (position -1)
    target_weight: int | None = None  # the canary weight read back when the run took its traffic target
    judged_stage: int = 0  # the last stage whose verdict (StageJudged) was given: each stage is judged once
    # the hold in flight sent once more (analysis.inconclusive: extend), as sent: its windows numbered on (hold.py)
    extension: RunProbes | None = None
    inconclusive: str | None = None  # why the hold the run is paused after was inconclusive, until continue

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def extended(self) -> bool:
        """The hold in flight is its extension (sent once)."""
        return self.extension is not None


def holding(state: RunState) -> bool:
    """Paused and going forward: a pause never holds a rollback back."""
    return state.paused_by is not None and not state.compensating and not state.finished


def analysis_of(state: RunState) -> Analysis:
    """The plan's analysis, or its defaults (a plan without one still judges its guard's windows)."""
    return state.plan.analysis or Analysis()


def no_windows_judged(state: RunState) -> RunState:
    """A step starting (or starting over) has judged none of its windows yet."""
    return replace(state, tally=StageTally(), judged_windows=frozenset())


def current_step(state: RunState) -> Step:
    """The step in flight; before the first one, the take of the run's traffic target."""
    if state.position < 0:
        return Step(TAKE_STEP, "preflight", "take", state.take)
    return state.steps[state.position]


def awaited_step(state: RunState) -> tuple[str, StepRef]:
    """The name and fields of the step (or compensation) the run waits on."""
    if state.compensating and state.compensations:
        compensation = state.compensations[-1]
        return f"undo:{compensation.undoes}", compensation.ref
    step = current_step(state)
    return step.name, step.ref


def awaited_command(state: RunState | None) -> SendCommand | None:
    """The command the run waits on, to send again after a restart.

    A replay folds the inputs, not our publishes: a coordinator killed between deciding and publishing
    leaves a state that awaits a command nobody sent. Sending it again is safe: the id is the same, so
    JetStream drops it within the duplicate window, and services are idempotent beyond it.
    """
    if state is None or state.finished or state.in_flight is None:
        return None
    if state.compensating:
        index = len(state.compensations) - 1
        return SendCommand(compensation_command_id(state, index), state.compensations[index].command)
    command = command_as_sent(state, current_step(state))
    return SendCommand(step_command_id(state, state.position), command) if command else None


def command_as_sent(state: RunState, step: Step) -> Message | None:
    """The step's command as sent: the first shift expects the canary weight read back when the run took its target;
    an extended hold is its extension."""
    command = step.command
    if state.extension is not None and step.kind == "hold":
        return state.extension
    if isinstance(command, ShiftTraffic) and command.expected_previous_weight is None and state.target_weight is not None:
        return command.model_copy(update={"expected_previous_weight": state.target_weight})
    return command


# --- command ids: one per try, so a resent command is not dropped as a duplicate of the failed one -------------


def step_command_id(state: RunState, position: int) -> str:
    if position < 0:
        return f"{state.run_id}.take{_try_suffix(state)}"
    extended = ".extended" if state.extended and position == state.position else ""
    return f"{state.run_id}.{position}.{state.steps[position].name}{extended}{_try_suffix(state)}"


def compensation_command_id(state: RunState, index: int) -> str:
    return f"{state.run_id}.undo.{index}.{state.compensations[index].undoes}{round_suffix(state, '.')}{_try_suffix(state)}"


def round_suffix(state: RunState, sep: str) -> str:
    """The `golive retry` round in an id, so the compensations sent again are not duplicates of the first round's."""
    return f"{sep}retry{state.retry_round}" if state.retry_round else ""


def _try_suffix(state: RunState) -> str:
    return f".try{state.attempt}" if state.attempt > 1 else ""
