"""Commands: what one service asks another to do. Subject ``<root>.cmd.<service>.<action>``.

A command names its target by its ``TYPE``: ``golive.cmd.<service>.<action>.v1``. Commands carry
everything the service needs (services share no plan and no database of their own), and name secrets by
environment variable, never by value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from shared.envelope import Envelope, Message, message_type, new_envelope
from shared.ids import DeploymentId
from shared.secrets import EnvName, PlainUrl, check_extras, refuse_password
from shared.subjects import Subjects


class Spec(BaseModel):
    # errors never quote the input back: a value in the wrong field may be a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def command_target(message: type[Message]) -> tuple[str, str]:
    """(service, action) of a command type: ``golive.cmd.migrator.apply.v1`` -> (migrator, apply)."""
    parts = message.TYPE.split(".")
    if len(parts) != 5 or parts[1] != "cmd":
        raise ValueError(f"{message.TYPE} is not a command type")
    return parts[2], parts[3]


def command_envelope(data: Message, *, id: str, source: str, run_id: str, subjects: Subjects,
                     causationid: str | None = None) -> Envelope:
    """The envelope of command ``data``, sent by ``source`` (a service, the CLI) to the service its type names.

    The one place a command is addressed: subject from the type, correlation = the command itself (its answers
    carry it), ``id`` deterministic for the command (the Nats-Msg-Id that deduplicates a re-send)."""
    service, action = command_target(type(data))
    return new_envelope(data, id=id, source=source, runid=run_id, subject=subjects.command(service, action),
                        correlationid=id, causationid=causationid)


# --- coordinator -------------------------------------------------------------------------------


@message_type("golive.cmd.coordinator.start_run.v1")
class StartRun(Message):
    """Start a go-live: the validated plan (as a plain dict) and the deployment pair."""

    plan: dict[str, Any]
    deploy_id: DeploymentId
    previous_deploy_id: DeploymentId | None = None
    requested_by: str = "cli"
    force_window: bool = False  # start outside the plan's maintenance window (recorded)
    # a start nobody accepted in time never runs later (the CLI gave up on it and said so): refused after this
    expires_at: datetime | None = None


@message_type("golive.cmd.coordinator.abort.v1")
class AbortRun(Message):
    """Stop a run now: its compensations start at once. Recorded with who asked and why."""

    reason: str = Field(min_length=1)
    requested_by: str


@message_type("golive.cmd.coordinator.approve.v1")
class ApproveGate(Message):
    """Open the gate a run waits at (`golive approve`); ``stage`` guards against approving the wrong one."""

    stage: int | None = None
    approved_by: str
    comment: str = ""


@message_type("golive.cmd.coordinator.pause.v1")
class PauseRun(Message):
    """Hold a run where it is (`golive pause`): the step in flight finishes, the next one waits for ContinueRun.
    Failures still roll back and an abort still works while paused."""

    reason: str = Field(min_length=1)
    requested_by: str


@message_type("golive.cmd.coordinator.continue.v1")
class ContinueRun(Message):
    """Let a paused run move on (`golive continue`)."""

    requested_by: str
    reason: str = ""


@message_type("golive.cmd.coordinator.retry.v1")
class RetryRun(Message):
    """Run the compensations a needs_human run has left to undo again, from the first not done (`golive retry`),
    once the cause is fixed."""

    requested_by: str
    reason: str = ""


# --- migrator ----------------------------------------------------------------------------------


class MigrationWaiver(Spec):
    """A lint rule knowingly waived for one statement; the reason is recorded in the history."""

    rule: str
    reason: str = Field(min_length=1)


class MigrationStatement(Spec):
    name: str
    sql: str
    waive: list[MigrationWaiver] = []
    reapply: bool = Field(default=False, description="apply even if this name was applied with another statement")


class MigrationSession(Spec):
    """Session settings applied on the migrator's dedicated connection (SET, not SET LOCAL)."""

    lock_timeout_ms: int = Field(default=5_000, ge=0)
    statement_timeout_ms: int = Field(default=0, ge=0)
    application_name: str = "golive-migrator"
    progress_interval_s: float = Field(default=0.5, gt=0, le=1.0, description="how often a build's progress is polled")


class MigrationPreflight(Spec):
    """What to do about transactions older than ``old_transaction_s`` (a build would wait for them)."""

    old_transaction_s: float = Field(default=60.0, gt=0)
    on_old_transactions: Literal["wait", "fail", "continue"] = "wait"
    wait_max_s: float = Field(default=600.0, gt=0, description="with wait: fail when they are still there after this")


class MigrationRetry(Spec):
    """Retries of a statement that hit a lock timeout or lost its backend; the invalid index is dropped first."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, description="first pause; doubles each retry, capped at 30 s")


@message_type("golive.cmd.migrator.apply.v1")
class ApplyMigrations(Message):
    """Run statements one at a time, each alone in autocommit, outside any transaction."""

    database_url_env: EnvName
    statements: list[MigrationStatement]
    session: MigrationSession = MigrationSession()
    preflight: MigrationPreflight = MigrationPreflight()
    retry: MigrationRetry = MigrationRetry()


@message_type("golive.cmd.migrator.revert.v1")
class RevertMigrations(Message):
    """Compensation: drop the indexes that ``statements`` create (DROP INDEX CONCURRENTLY IF EXISTS), newest first."""

    database_url_env: EnvName
    statements: list[MigrationStatement]
    session: MigrationSession = MigrationSession()
    retry: MigrationRetry = MigrationRetry()


# --- prober ------------------------------------------------------------------------------------


class Thresholds(Spec):
    """Limits a probe is judged by. Absent limits are not judged."""

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    error_rate_pct: float | None = Field(default=None, ge=0, le=100)
    min_samples: int = Field(default=1, ge=1)
    # pg_health gauges, judged on their worst value over the run
    replica_lag_s: float | None = Field(default=None, ge=0)
    wal_lag_bytes: float | None = Field(default=None, ge=0)
    connection_use_pct: float | None = Field(default=None, ge=0, le=100)
    long_transactions: int | None = Field(default=None, ge=0)
    # canary vs baseline: how much slower (p95, ms) the probed target may be before a significant difference fails it
    p95_increase_ms: float | None = Field(default=None, ge=0)


class FixedParams(Spec):
    """The same parameter values for every request."""

    kind: Literal["fixed"] = "fixed"
    values: list[Any] = []


class SampledParams(Spec):
    """Each request takes a random row of ``query`` (run once when the probe starts; keep it small: LIMIT)."""

    kind: Literal["sample"] = "sample"
    query: str


class SequenceParams(Spec):
    """Request n (n = start, start + step, ...) formats ``template``: ``"{n}"`` is n itself, ``"evt_{n}"`` a string."""

    kind: Literal["sequence"] = "sequence"
    template: list[Any] = ["{n}"]
    start: int = 1
    step: int = 1


ParamGenerator = Annotated[FixedParams | SampledParams | SequenceParams, Field(discriminator="kind")]


class SqlProbeSpec(Spec):
    """A named query. A query that may write runs in a transaction that is always rolled back, unless
    ``allow_writes``; a read runs in a read-only session, so a write mistaken for a read fails instead."""

    kind: Literal["sql"] = "sql"
    name: str
    database_url_env: EnvName
    query: str
    params: list[Any] = Field(default=[], description="fixed parameter values (or params_from, not both)")
    params_from: ParamGenerator | None = None
    allow_writes: bool = False
    timeout_ms: int = Field(default=2_000, gt=0)

    @model_validator(mode="after")
    def _one_source_of_parameters(self) -> SqlProbeSpec:
        if self.params and self.params_from is not None:
            raise ValueError("give params (fixed values) or params_from (a generator), not both")
        return self


# an http(s) URL, or `${NAME}/api/health`: the base comes from environment variable NAME where the prober runs, so
# a plan names its app's address (a per-environment value) the way it names its database; never with a password
HttpUrl = Annotated[str, Field(pattern=r"^(https?://|\$\{[A-Za-z_][A-Za-z0-9_]*\})"), AfterValidator(refuse_password)]


class HttpProbeSpec(Spec):
    """An HTTP endpoint with ``curl -f`` semantics: a status >= 400 is an error; no redirects followed."""

    kind: Literal["http"] = "http"
    name: str
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    headers_env: dict[str, EnvName] = Field(default={}, description="header name -> environment variable holding its value")
    body: str | None = None
    expect_status: int | None = Field(default=None, ge=100, le=599, description="default: any status below 400")
    body_contains: str | None = None
    timeout_ms: int = Field(default=5_000, gt=0)


class PgHealthProbeSpec(Spec):
    """Postgres health gauges sampled at the load's rate: replica lag (on each replica), WAL lag bytes per
    replica (pg_stat_replication on the primary), connection use against max_connections, long transactions."""

    kind: Literal["pg_health"] = "pg_health"
    name: str
    database_url_env: EnvName
    replica_url_envs: list[EnvName] = []
    # PgBouncer's admin console (database "pgbouncer"): each pool's use, (cl_active + cl_waiting) / pool_size
    pgbouncer_admin_url_env: EnvName | None = None
    long_transaction_s: float = Field(default=60.0, gt=0)
    timeout_ms: int = Field(default=2_000, gt=0)


def _probe_kind(value: Any) -> str:
    # messages written before probe kinds existed carry no kind: they are sql probes
    if isinstance(value, dict):
        return value.get("kind", "sql")
    return getattr(value, "kind", "sql")


ProbeSpec = Annotated[
    Annotated[SqlProbeSpec, Tag("sql")] | Annotated[HttpProbeSpec, Tag("http")] | Annotated[PgHealthProbeSpec, Tag("pg_health")],
    Discriminator(_probe_kind),
]


class LoadSpec(Spec):
    """How requests are sent. ``open``: request i is due at t0 + i/rate whatever the answers do, and its
    latency counts from that due time, so a stall shows as latency (no coordinated omission); ``concurrency``
    connections share the schedule. ``closed``: ``concurrency`` workers, each sends when its last answer came."""

    mode: Literal["closed", "open"] = "closed"
    rate: float | None = Field(default=None, gt=0, le=1_000_000, description="requests per second (open loop)")
    warmup_s: float = Field(default=0.0, ge=0, description="requests due in the first seconds are not counted")

    @model_validator(mode="after")
    def _open_loop_has_a_rate(self) -> LoadSpec:
        if self.mode == "open" and self.rate is None:
            raise ValueError("an open-loop load needs a rate (requests per second)")
        return self


@message_type("golive.cmd.prober.run.v1")
class RunProbe(Message):
    """Run one probe for ``duration_s`` seconds (or until a StopProbe names it) and judge it.

    With ``window_s``, a ProbeWindow event is published every window; with ``baseline`` (the stable
    deployment), the baseline is probed with the same load at the same time and the result compares them."""

    probe: ProbeSpec
    duration_s: float = Field(gt=0)
    concurrency: int = Field(default=1, ge=1, le=256)
    load: LoadSpec = LoadSpec()
    window_s: float | None = Field(default=None, gt=0)
    baseline: ProbeSpec | None = None
    thresholds: Thresholds = Thresholds()
    label: str = ""

    @model_validator(mode="after")
    def _baseline_of_the_same_kind(self) -> RunProbe:
        if self.baseline is not None and self.baseline.kind != self.probe.kind:
            raise ValueError(f"baseline is a {self.baseline.kind} probe but the probe is {self.probe.kind}; compare like with like")
        return self


@message_type("golive.cmd.prober.run_set.v1")
class RunProbes(Message):
    """Run several probes at once on the same clock: a canary stage's hold (its checks and the plan's
    guard probe) for ``duration_s``, or until a StopProbe names this command. Windows of every probe are
    published as ProbeWindow events carrying this command's id; the answer is one ProbesCompleted."""

    probes: list[RunProbe] = Field(min_length=1)
    duration_s: float = Field(gt=0)
    label: str = ""


@message_type("golive.cmd.prober.stop.v1")
class StopProbe(Message):
    """Stop the running probe started by command ``command_id`` now and report what it measured.
    Sent on core NATS (``Subjects.stop_probes``), not the command stream: it must reach the one instance
    running that probe, and is meaningless once the probe is over."""

    command_id: str
    reason: str = ""


# --- traffic -----------------------------------------------------------------------------------


class ProviderSpec(Spec):
    """Which traffic provider to use and its settings (secrets by env var name)."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    type: str = "dry-run"

    @model_validator(mode="after")
    def _secrets_by_name(self) -> ProviderSpec:
        check_extras(self.model_extra or {})
        return self


@message_type("golive.cmd.traffic.take.v1")
class TakeTrafficTarget(Message):
    """A run's first traffic step: hold the provider's target (the routing the canary/stable pair goes through)
    for this run alone, and read its weights back. Refused, with the holder's run id, while another run holds
    it; answered by traffic_target_taken with the canary weight found (what the first shift expects)."""

    provider: ProviderSpec
    canary: DeploymentId
    stable: DeploymentId | None = None


@message_type("golive.cmd.traffic.shift.v1")
class ShiftTraffic(Message):
    """Send ``weight`` percent of traffic to the canary deployment, then read the weight back.

    ``expected_previous_weight``: the canary weight golive set last, or read back when the run took the target
    (optimistic concurrency). If the provider reads back anything else, someone changed traffic by hand:
    nothing is changed and traffic_drift is published. None: compare with the weight read back when the run
    took the target, else the one the traffic service itself set last, if it knows one."""

    provider: ProviderSpec
    canary: DeploymentId
    stable: DeploymentId | None = None
    weight: int = Field(ge=0, le=100)
    expected_previous_weight: int | None = Field(default=None, ge=0, le=100)


@message_type("golive.cmd.traffic.rollback.v1")
class RollbackTraffic(Message):
    """Compensation: send all traffic back to ``to`` (the previous deployment); canary weight 0.
    Never refused for drift and never queued behind a shift of the same canary (it cancels it)."""

    provider: ProviderSpec
    canary: DeploymentId
    to: DeploymentId | None = None


@message_type("golive.cmd.traffic.promote.v1")
class PromoteTraffic(Message):
    """Lock-in: make the canary the production deployment (all traffic on it), read back."""

    provider: ProviderSpec
    canary: DeploymentId
    stable: DeploymentId | None = None


# --- notifier ----------------------------------------------------------------------------------
# The notifier takes no commands: it reads the event stream. What follows is the plan's ``notifications``
# section, defined here because it travels inside RunStarted.plan and both the coordinator (validating the
# plan) and the notifier (routing and rendering) read it.

NotificationKind = Literal[
    "run_started", "phase_started", "stage_passed", "rollback_started", "run_succeeded", "run_rolled_back",
    "needs_human", "watch_breached", "watch_summary",
]
DEFAULT_NOTIFICATION_KINDS: tuple[NotificationKind, ...] = (
    "run_started", "stage_passed", "run_succeeded", "rollback_started", "run_rolled_back", "needs_human",
    "watch_breached",  # the post-deploy watch (plan post_deploy): a check breached after the go-live
)
# what ``on`` accepts: the kinds, and the first plans' names for the runbook's three messages
OnKind = Literal[
    "run_started", "phase_started", "stage_passed", "rollback_started", "run_succeeded", "run_rolled_back",
    "needs_human", "watch_breached", "watch_summary", "start", "success", "rollback",
]
# the first plans' names for the runbook's messages, still accepted in ``on``
LEGACY_NOTIFICATION_KINDS: dict[str, tuple[str, ...]] = {
    "start": ("run_started",), "success": ("run_succeeded",), "rollback": ("rollback_started", "run_rolled_back"),
}
Severity = Literal["info", "success", "warning", "danger", "critical"]
SEVERITY_ORDER: tuple[str, ...] = ("info", "success", "warning", "danger", "critical")


class NotificationSink(Spec):
    """Where messages go. ``type`` picks the sink module (slack, webhook, ...); sink-specific settings (Slack's
    ``format: attachments|blocks``) ride along. The URL is a secret: only the variable's name is here."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    type: str = "slack"
    # a name, not a URL: a URL pasted here would put the secret in the plan (and in RunStarted)
    webhook_url_env: EnvName = Field(description="environment variable holding the webhook URL (never the URL)")
    attempts: int = Field(default=5, ge=1, le=20, description="posts before giving up")
    timeout_s: float = Field(default=5.0, gt=0, le=300, description="how long one post may take")
    give_up_after_s: float = Field(default=120.0, gt=0, description="bound on all attempts and their waits")

    @model_validator(mode="after")
    def _secrets_by_name(self) -> NotificationSink:
        check_extras(self.model_extra or {})
        return self


class NotificationRoute(Spec):
    """Which kinds of moment go to which sinks (none named: all), from which severity up, with which template."""

    events: list[NotificationKind] = Field(min_length=1)
    sinks: list[str] = []
    min_severity: Severity = "info"
    template: str | None = Field(default=None, description="a template name; default: the kind's own")


class MessageTemplate(Spec):
    """A message as Jinja2 templates. Keys left out keep the default template's."""

    text: str | None = None
    fields: dict[str, str] | None = None
    severity: Severity | None = None


class NotificationsSpec(Spec):
    """The communication plan: sinks, routes, templates and the words the runbook's messages use."""

    sinks: dict[str, NotificationSink] = {}
    on: list[OnKind] = list[OnKind](DEFAULT_NOTIFICATION_KINDS)
    routes: list[NotificationRoute] = Field(default=[], description="default: every kind in `on` to every sink")
    templates: dict[str, MessageTemplate] = {}
    environment: str = "Production"
    maintenance_window: str = ""
    report_url: PlainUrl = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        # YAML 1.1 (PyYAML) reads an unquoted ``on:`` key as the boolean True
        if any(k is True for k in data) and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        # ``slack: {webhook_url_env: ...}`` is a sink named slack
        if "slack" in data:
            data = dict(data)
            slack = data.pop("slack")
            if slack is not None:
                data["sinks"] = {"slack": {"type": "slack", **slack}, **(data.get("sinks") or {})}
        return data

    @model_validator(mode="after")
    def _routes_name_known_sinks_and_templates(self) -> NotificationsSpec:
        for i, route in enumerate(self.routes):
            unknown = [s for s in route.sinks if s not in self.sinks]
            if unknown:
                known = ", ".join(sorted(self.sinks)) or "none"
                raise ValueError(f"routes[{i}] names sink(s) {', '.join(unknown)} that are not defined (sinks: {known})")
            if route.template and route.template not in self.templates and route.template not in get_args(NotificationKind):
                raise ValueError(f"routes[{i}] names template {route.template!r}, which is neither in templates nor a kind")
        return self

    def kinds_on(self) -> set[str]:
        """The kinds ``on`` selects, legacy names expanded."""
        kinds: set[str] = set()
        for kind in self.on:
            kinds.update(LEGACY_NOTIFICATION_KINDS.get(kind, (kind,)))
        return kinds
