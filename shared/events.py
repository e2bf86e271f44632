"""Events: facts that happened. Subject ``<root>.evt.<run_id>.<source>.<name>``.

The event stream is the audit log, the monitoring feed and the coordinator's memory. Every event that
answers a command carries that command's id as ``correlationid``.

Events are forever: the stream keeps them 400 days, and today's code reads every one of them back (status,
report, resume, a restarted coordinator). So, for every event type, **additive changes only within a version**:

- a new field must have a default that says what events without it meant (they are read with that default);
- never rename or remove a field, narrow its type or change what a value means within a version: that is a new
  type name (``.v2``), registered beside the old one, which stays readable;
- the plan inside ``run_started`` has a version of its own (``plan_version``; shared/plan_versions.py upgrades
  older plans).

tests/test_recorded_stream.py holds today's models to this: it parses a recorded stream of real runs
(tests/recorded/) with them (payloads forbid unknown keys, so a renamed or removed field fails it) and replays
it through `golive status`, `report` and `resume`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from golive.shared.envelope import Message, message_type
from golive.shared.ids import DeploymentId
from golive.shared.plan.base import Strict

# Phase and StepRef are part of the events' contract: readers of events import them from here too
from golive.shared.step_ref import Phase as Phase
from golive.shared.step_ref import StepRef as StepRef
from golive.shared.step_ref import ref_of_name

# --- coordinator: the run ----------------------------------------------------------------------

Outcome = Literal["succeeded", "rolled_back", "needs_human"]
# a verdict on numbers against limits (shared/judge.py): inconclusive is neither passed nor failed (no evidence)
Finding = Literal["pass", "fail", "inconclusive"]


@message_type("golive.coordinator.run_started.v1")
class RunStarted(Message):
    """A run began. ``plan``: the validated plan as a dict, written in plan format ``plan_version`` (absent in runs
    started before plans had versions: 1). Read it back only through golive.shared.plan.plan_of, which upgrades an older
    plan to today's and validates it: the one place a stored plan is read."""

    plan: dict[str, Any]
    plan_version: int = 1
    plan_name: str
    deploy_id: DeploymentId
    previous_deploy_id: DeploymentId | None = None
    window_ends_at: datetime | None = None  # of the maintenance window the run started in
    # the run takes its traffic target before its first step (services/traffic/target_lock.py); runs started before
    # targets were taken (absent: False) never took one, and replayed they must not wait for it
    takes_traffic_target: bool = False


class StepEvent(Message):
    """An event about one step of a run: ``step`` is its name (its identity), ``at`` its fields. Read the fields
    through ``where``, never from the name."""

    step: str
    # absent in events written before steps were typed (None): ``where`` reads those from the name
    at: StepRef | None = None

    @property
    def where(self) -> StepRef:
        """The step as fields: phase, stage, kind, probe."""
        return self.at or ref_of_name(self.step)


@message_type("golive.coordinator.phase_started.v1")
class PhaseStarted(StepEvent):
    phase: Phase
    detail: str = ""


@message_type("golive.coordinator.step_failed.v1")
class StepFailed(StepEvent):
    """A step's failure as the coordinator judged it: why, with the numbers. ``cause`` is one word for
    counting rollbacks by reason: threshold, timeout, service_failed, read_back, drift, aborted, window,
    analysis (failed windows of a stage hold reached a limit), guard (a guard window breached), inconclusive (a
    hold with too little evidence under `analysis.inconclusive: fail`)."""

    reason: str
    cause: str = "failed"


@message_type("golive.coordinator.step_timed_out.v1")
class StepTimedOut(StepEvent):
    """No answer came by the deadline. Its correlationid is the command awaited; folding this event (not
    the clock) is what fails the step, so a replay after a restart reaches the same state."""

    deadline: datetime


@message_type("golive.coordinator.step_retrying.v1")
class StepRetrying(StepEvent):
    """A transient failure: the step is tried again at ``retry_at`` (attempt ``attempt`` failed)."""

    attempt: int
    reason: str
    retry_at: datetime


@message_type("golive.coordinator.retry_due.v1")
class RetryDue(StepEvent):
    """The backoff is over; folding this event (correlated to the failed command) sends the next try."""

    attempt: int


@message_type("golive.coordinator.compensation_started.v1")
class CompensationStarted(StepEvent):
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


PAUSED_BY_GOLIVE = "golive"  # requested_by of a pause the coordinator decided (a stage's hold was inconclusive)


@message_type("golive.coordinator.pause_requested.v1")
class PauseRequested(Message):
    """Someone paused the run (`golive pause`), or the coordinator did (``requested_by`` PAUSED_BY_GOLIVE: a stage's
    hold ended inconclusive under ``analysis.inconclusive: pause``); folding this event holds it before its next
    step."""

    reason: str
    requested_by: str


@message_type("golive.coordinator.continue_requested.v1")
class ContinueRequested(Message):
    """Someone let a paused run go on (`golive continue`); folding this event releases what was held."""

    requested_by: str
    reason: str = ""


@message_type("golive.coordinator.retry_requested.v1")
class RetryRequested(Message):
    """Someone asked a needs_human run to undo what is left again (`golive retry`); folding this event
    starts the first compensation not done."""

    requested_by: str
    reason: str = ""


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


# --- coordinator: the post-deploy watch (the runbook's "next 7 days") ------------------------------


class WatchProbe(Strict):
    """One probe's numbers in a post-deploy check."""

    probe: str
    passed: bool
    count: int = 0
    errors: int = 0
    p95_ms: float = 0.0
    error_rate_pct: float = 0.0
    summary: str = ""


@message_type("golive.coordinator.watch_started.v1")
class WatchStarted(Message):
    """The run succeeded and the plan has ``post_deploy``: the deployment is checked every ``health_every_s``
    until ``ends_at``, with a summary every ``summary_every_s``."""

    deploy_id: str
    period_s: float
    health_every_s: float
    summary_every_s: float
    ends_at: datetime
    checks: list[str]


@message_type("golive.coordinator.watch_check_completed.v1")
class WatchCheckCompleted(Message):
    """Post-deploy check ``index`` (0-based): its probes' numbers and verdict; ``error`` when it could not run."""

    index: int
    passed: bool
    summary: str
    probes: list[WatchProbe] = []
    error: str = ""
    next_check_at: datetime | None = None


@message_type("golive.coordinator.watch_breached.v1")
class WatchBreached(Message):
    """A post-deploy check breached its thresholds (the notifier tells Slack by default)."""

    index: int
    deploy_id: str
    probes: list[str]
    reason: str


@message_type("golive.coordinator.watch_summary.v1")
class WatchSummary(Message):
    """The checks since the previous summary (the runbook's daily summary): how many passed, breaches, worst p95."""

    index: int
    since: datetime
    until: datetime
    checks: int
    passed: int
    breaches: int
    worst_p95_ms: dict[str, float] = {}
    summary: str = ""


@message_type("golive.coordinator.watch_ended.v1")
class WatchEnded(Message):
    """The post-deploy period is over."""

    checks: int
    breaches: int
    reason: str


# --- migrator ----------------------------------------------------------------------------------


class IndexResult(Strict):
    name: str
    index: str | None
    action: Literal["built", "already_present", "rebuilt_invalid", "executed", "dropped", "absent", "kept"]
    seconds: float
    attempts: int = 1
    waived: list[str] = []


@message_type("golive.migrator.migrations_applied.v1")
class MigrationsApplied(Message):
    results: list[IndexResult]


@message_type("golive.migrator.migrations_reverted.v1")
class MigrationsReverted(Message):
    dropped: list[str]
    results: list[IndexResult] = []


@message_type("golive.migrator.migration_progress.v1")
class MigrationProgress(Message):
    """Where one statement is, polled from pg_stat_progress_create_index (not an answer to the command).

    ``status``: progress (a poll), waiting (on ``blocking_pid``), retrying (after ``error``), done (after
    progress was shown). A statement done within one poll interval is reported by the result alone."""

    name: str
    index: str | None = None
    status: Literal["progress", "waiting", "retrying", "done"]
    attempt: int = 1
    phase: str = ""
    phase_percent: float | None = None
    overall_percent: float | None = None
    lockers_total: int = 0
    lockers_done: int = 0
    blocking_pid: int | None = None
    blocking_query: str | None = None
    elapsed_s: float = 0.0
    error: str | None = None


class OldTransaction(Strict):
    pid: int
    age_s: float
    state: str
    query: str


@message_type("golive.migrator.old_transactions_found.v1")
class OldTransactionsFound(Message):
    """Preflight: transactions older than the plan's threshold that a build would wait for, and what was done."""

    threshold_s: float
    policy: Literal["wait", "fail", "continue"]
    transactions: list[OldTransaction]


# --- prober ------------------------------------------------------------------------------------


class Verdict(Strict):
    metric: str
    limit: float
    observed: float
    passed: bool
    samples: int = 0  # the requests (answered or failed) this verdict rests on


class Bound(Strict):
    """A two-sided confidence interval of a percentile, in ms (shared/limits.py); None: too few requests for that
    side's bound."""

    low: float | None = None
    high: float | None = None


class LatencySummary(Strict):
    """One target's numbers over a window or a whole run."""

    count: int
    errors: int
    errors_by_class: dict[str, int] = {}
    p50_ms: float
    p90_ms: float = 0.0
    p95_ms: float
    p99_ms: float
    max_ms: float
    achieved_rate: float = 0.0
    gauges: dict[str, float] = {}
    # gauges that some sample could not read (a replica down, a privilege missing), with why: judged inconclusive
    unread: dict[str, str] = {}
    # the prober's own loop: its worst lateness in the window (over golive.shared.judge.PROBER_LAG_TOLERANCE_MS: the window
    # is unreliable, judged inconclusive), and the requests in flight across such a stall, not counted above
    prober_lag_ms: float = 0.0
    overloaded: int = 0
    # the confidence bounds the limits are judged by (shared/judge.py, shared/limits.py): ``confidence`` their two-sided
    # level (1 - the plan's analysis.alpha) and the order statistics bounding p95 and p99 at it ("p95_ms" -> Bound);
    # the error rate's bound is computed from count and errors. 0 in events before them: judged on the point estimates
    confidence: float = 0.0
    bounds_ms: dict[str, Bound] = {}
    # open loop: requests sent late because every worker was busy with slower answers (their latency counts from the
    # due time), and requests due that no worker ever sent (also in errors_by_class as "unsent")
    late: int = 0
    unsent: int = 0


class Comparison(Strict):
    """Probed target (the canary) against the baseline (stable) under the same load. ``p_value``: by ``method``, the
    sequential judge's anytime-valid p-value (``sequential-sign``: a hold with a tolerance) or a two-sided Mann-Whitney
    U on the latencies; ``prob_slower``: chance a canary request is slower than a stable one."""

    verdict: Literal["worse", "better", "no difference"]
    p95_delta_ms: float
    error_rate_delta_pct: float
    p_value: float
    prob_slower: float
    samples: int
    baseline_samples: int
    method: str = "mann-whitney-u"
    reason: str = ""


@message_type("golive.prober.probe_window.v1")
class ProbeWindow(Message):
    """One window of a running probe (monitoring feed; not an answer: its correlationid is empty and
    ``command_id`` names the RunProbe)."""

    command_id: str
    probe: str
    label: str = ""
    target: Literal["probe", "baseline"] = "probe"
    index: int  # from RunProbe.first_window (0; an extended hold goes on from its hold's windows)
    start_s: float  # into this command's probe, counted from the end of its warm-up
    seconds: float
    stats: LatencySummary


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
    kind: str = "sql"
    p90_ms: float = 0.0
    mode: Literal["closed", "open"] = "closed"
    target_rate: float | None = None
    achieved_rate: float = 0.0
    gauges: dict[str, float] = {}
    windows: int = 0
    stopped: str | None = None
    baseline: LatencySummary | None = None
    comparison: Comparison | None = None
    # pass, fail or inconclusive (``passed`` is False then too); None in events before it: ``passed`` says which
    verdict: Finding | None = None
    # the prober's own loop over the run: its worst lateness, and the requests it could not time (in flight or unsent
    # across a stall of its own: not in count or errors, so count + errors + overloaded are the requests due)
    prober_lag_ms: float = 0.0
    overloaded: int = 0
    # open loop: requests sent late because every worker was busy, and requests due never sent (failures, "unsent")
    late: int = 0
    unsent: int = 0

    @property
    def finding(self) -> Finding:
        return self.verdict or ("pass" if self.passed else "fail")


# --- traffic -----------------------------------------------------------------------------------


@message_type("golive.prober.probes_completed.v1")
class ProbesCompleted(Message):
    """The answer to RunProbes: each probe's result; ``passed`` when every one passed."""

    results: list[ProbeCompleted]
    passed: bool
    summary: str
    duration_s: float
    stopped: str | None = None
    # fail when a probe failed, else inconclusive when one was, else pass; None in events before it: ``passed`` says
    verdict: Finding | None = None

    @property
    def finding(self) -> Finding:
        return self.verdict or ("pass" if self.passed else "fail")


@message_type("golive.coordinator.window_judged.v1")
class WindowJudged(StepEvent):
    """The coordinator's verdict on one probe window of a canary stage (per-window analysis), with its numbers:
    "stage 2 (50%): window 4 failed: p95 512 ms > 400 ms over 1,204 requests (2 consecutive)"."""

    probe: str
    index: int
    verdict: Finding
    reason: str
    count: int = 0
    p95_ms: float | None = None
    error_rate_pct: float | None = None
    failures: int = 0  # failed windows of this stage so far, this one included
    consecutive_failures: int = 0
    guard: bool = False  # a guard (replica lag, WAL lag, pool use) breached: the stage fails at once


@message_type("golive.coordinator.stage_judged.v1")
class StageJudged(Message):
    """The coordinator's verdict on one canary stage, once, when the stage ends: ``pass`` when its last step (its
    hold, or its shift when it holds nothing) passed, ``fail`` when the run failed in one of its steps. ``reason``
    says why, with the numbers; ``windows`` and ``failed_windows``: the hold's windows judged and failed."""

    stage: int
    weight: int = Field(ge=0, le=100)
    verdict: Literal["pass", "fail"]
    reason: str
    windows: int = 0
    failed_windows: int = 0
    inconclusive_windows: int = 0  # windows judged neither pass nor fail (too thin, a gauge unread); 0 before it


@message_type("golive.traffic.traffic_target_taken.v1")
class TrafficTargetTaken(Message):
    """The run holds the traffic target (``target``: which routing) until it ends; ``weight``: the canary weight
    read back from the provider when it took it, what the run's first shift expects to find."""

    provider: str
    canary: str
    target: str
    weight: int = Field(ge=0, le=100)


@message_type("golive.traffic.traffic_shifted.v1")
class TrafficShifted(Message):
    """The canary's weight was set and read back. ``before``: the weight read before the change (the weight
    this command found, also when it is redelivered); ``after``: the weight read back after it; ``verified``:
    after == weight; ``changed``: False when the provider already applied ``weight`` (an idempotent repeat)."""

    provider: str
    canary: str
    weight: int = Field(ge=0, le=100)
    verified_weight: int = Field(ge=0, le=100)
    before: int | None = Field(default=None, ge=0, le=100)
    after: int | None = Field(default=None, ge=0, le=100)
    verified: bool = True
    changed: bool = True
    duration_s: float = 0.0


@message_type("golive.traffic.traffic_drift.v1")
class TrafficDrift(Message):
    """Refused to shift: the provider applies a weight golive did not set (someone changed traffic by hand).
    Nothing was changed; the saga treats this as a failed step."""

    provider: str
    canary: str
    requested_weight: int = Field(ge=0, le=100)
    expected_weight: int = Field(ge=0, le=100)
    observed_weight: int = Field(ge=0, le=100)


@message_type("golive.traffic.traffic_rolled_back.v1")
class TrafficRolledBack(Message):
    """Rollback done: all traffic on ``to``; the canary's weight read back (0). ``changed`` False: this run never
    moved traffic on the target (its shifts were refused or never applied, or another run holds the target), so
    nothing was changed and ``verified_weight`` is the weight read back as it stands."""

    provider: str
    canary: str
    to: str | None
    verified_weight: int = Field(ge=0, le=100)
    before: int | None = Field(default=None, ge=0, le=100)
    cancelled_shifts: int = 0
    duration_s: float = 0.0
    changed: bool = True


@message_type("golive.traffic.traffic_promoted.v1")
class TrafficPromoted(Message):
    """The canary is now production: all traffic on it, read back."""

    provider: str
    canary: str
    verified_weight: int = Field(ge=0, le=100)
    duration_s: float = 0.0


# --- notifier ----------------------------------------------------------------------------------


@message_type("golive.notifier.notification_sent.v1")
class NotificationSent(Message):
    """One message reached one sink. ``event_id``: the run event it announces."""

    kind: str
    sink: str
    attempts: int
    event_id: str = ""
    severity: str = ""
    text: str = ""


@message_type("golive.notifier.notification_failed.v1")
class NotificationFailed(Message):
    """A message could not be delivered to a sink within the sink's bound; the run goes on regardless."""

    kind: str
    sink: str
    attempts: int
    reason: str
    event_id: str = ""


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
