"""Events: facts that happened. Subject ``<root>.evt.<run_id>.<source>.<name>``.

The event stream is the audit log, the monitoring feed and the coordinator's memory. Every event that
answers a command carries that command's id as ``correlationid``. Adding a field is compatible;
renaming or removing one is a new version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from shared.commands import Spec
from shared.envelope import Message, message_type

# --- coordinator: the run ----------------------------------------------------------------------

Phase = Literal[
    "preflight", "migrate", "smoke", "canary", "final_validation", "lock_in", "done", "compensating",
]
Outcome = Literal["succeeded", "rolled_back", "needs_human"]


@message_type("golive.coordinator.run_started.v1")
class RunStarted(Message):
    plan: dict[str, Any]
    plan_name: str
    deploy_id: str
    previous_deploy_id: str | None = None
    window_ends_at: datetime | None = None  # of the maintenance window the run started in


@message_type("golive.coordinator.phase_started.v1")
class PhaseStarted(Message):
    phase: Phase
    step: str
    detail: str = ""


@message_type("golive.coordinator.step_failed.v1")
class StepFailed(Message):
    """A step's failure as the coordinator judged it: why, with the numbers. ``cause`` is one word for
    counting rollbacks by reason: threshold, timeout, service_failed, read_back, drift, aborted, window."""

    step: str
    reason: str
    cause: str = "failed"


@message_type("golive.coordinator.step_timed_out.v1")
class StepTimedOut(Message):
    """No answer came by the deadline. Its correlationid is the command awaited; folding this event (not
    the clock) is what fails the step, so a replay after a restart reaches the same state."""

    step: str
    deadline: datetime


@message_type("golive.coordinator.step_retrying.v1")
class StepRetrying(Message):
    """A transient failure: the step is tried again at ``retry_at`` (attempt ``attempt`` failed)."""

    step: str
    attempt: int
    reason: str
    retry_at: datetime


@message_type("golive.coordinator.retry_due.v1")
class RetryDue(Message):
    """The backoff is over; folding this event (correlated to the failed command) sends the next try."""

    step: str
    attempt: int


@message_type("golive.coordinator.compensation_started.v1")
class CompensationStarted(Message):
    step: str
    undoes: str


@message_type("golive.coordinator.abort_requested.v1")
class AbortRequested(Message):
    """Someone asked to abort the run (`golive abort`); folding this event starts the compensations."""

    reason: str
    requested_by: str


@message_type("golive.coordinator.approval_granted.v1")
class ApprovalGranted(Message):
    """Someone approved the gate of ``stage``; folding this event opens it (if the run waits there)."""

    stage: int | None
    approved_by: str
    comment: str = ""


@message_type("golive.coordinator.window_closing.v1")
class WindowClosing(Message):
    """The maintenance window closes at ``ends_at`` and a rollback needs ``rollback_s``: the run must stop now."""

    ends_at: datetime
    rollback_s: float


@message_type("golive.coordinator.run_finished.v1")
class RunFinished(Message):
    outcome: Outcome
    reason: str
    duration_s: float
    left_to_undo: list[str] = []


# --- migrator ----------------------------------------------------------------------------------


class IndexResult(Spec):
    name: str
    index: str | None
    action: Literal["built", "already_present", "rebuilt_invalid", "executed"]
    seconds: float


@message_type("golive.migrator.migrations_applied.v1")
class MigrationsApplied(Message):
    results: list[IndexResult]


@message_type("golive.migrator.migrations_reverted.v1")
class MigrationsReverted(Message):
    dropped: list[str]


# --- prober ------------------------------------------------------------------------------------


class Verdict(Spec):
    metric: str
    limit: float
    observed: float
    passed: bool


@message_type("golive.prober.probe_completed.v1")
class ProbeCompleted(Message):
    probe: str
    label: str = ""
    count: int
    errors: int
    errors_by_class: dict[str, int] = {}
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    duration_s: float
    verdicts: list[Verdict]
    passed: bool
    summary: str


# --- traffic -----------------------------------------------------------------------------------


@message_type("golive.traffic.traffic_shifted.v1")
class TrafficShifted(Message):
    provider: str
    canary: str
    weight: int = Field(ge=0, le=100)
    verified_weight: int = Field(ge=0, le=100)


@message_type("golive.traffic.traffic_rolled_back.v1")
class TrafficRolledBack(Message):
    provider: str
    canary: str
    to: str | None
    verified_weight: int = Field(ge=0, le=100)


# --- notifier ----------------------------------------------------------------------------------


@message_type("golive.notifier.notification_sent.v1")
class NotificationSent(Message):
    kind: str
    sink: str
    attempts: int


# --- any service -------------------------------------------------------------------------------

FailureClass = Literal["invalid", "transient", "fatal"]


@message_type("golive.service.command_failed.v1")
class CommandFailed(Message):
    """A service could not do what a command asked. ``failure`` tells whether a retry could help."""

    service: str
    command_type: str
    reason: str
    failure: FailureClass = "fatal"
    attempts: int = 1


@message_type("golive.service.dead_lettered.v1")
class DeadLettered(Message):
    """A message that could not be parsed, kept with the error. Published on ``<root>.dlq.<service>``."""

    service: str
    subject: str
    error: str
    body: str
    headers: dict[str, str] = {}
