"""Commands: what one service asks another to do. Subject ``<root>.cmd.<service>.<action>``.

A command names its target by its ``TYPE``: ``golive.cmd.<service>.<action>.v1``. Commands carry
everything the service needs (services share no database of their own), and name secrets by environment
variable, never by value. What a command carries of the plan is the plan's own model (shared/plan/): a probe's
spec, the statements and migration settings, the traffic provider; never a copy declared again here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from golive.shared.envelope import Envelope, Message, message_type, new_envelope
from golive.shared.ids import DeploymentId
from golive.shared.plan.base import Strict
from golive.shared.plan.checks import LoadSpec, Thresholds
from golive.shared.plan.migrations import MigrationPreflight, MigrationRetry, MigrationSession, MigrationStatement
from golive.shared.plan.migrations import MigrationWaiver as MigrationWaiver
from golive.shared.plan.probes import FixedParams as FixedParams
from golive.shared.plan.probes import HttpProbeSpec as HttpProbeSpec
from golive.shared.plan.probes import PgHealthProbeSpec as PgHealthProbeSpec
from golive.shared.plan.probes import ProbeSpec
from golive.shared.plan.probes import SampledParams as SampledParams
from golive.shared.plan.probes import SequenceParams as SequenceParams
from golive.shared.plan.probes import SqlProbeSpec as SqlProbeSpec
from golive.shared.plan.traffic import ProviderSpec
from golive.shared.secrets import EnvName
from golive.shared.subjects import Subjects

# the ``X as X`` imports: parts of these commands, re-exported so a sender builds a command from this module alone


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
    """Start a go-live: the plan and the deployment pair.

    ``plan`` is the plan file's content with its ``version``; the coordinator reads it with golive.shared.plan's
    ``plan_from_dict`` (upgrade, then validate) in its handler rather than in this model, so a plan it cannot
    take is refused with an answer (command_failed: why) instead of being dead-lettered unheard."""

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


class SplitTraffic(Strict):
    """A check on the production alias, whose traffic the provider splits between two deployments: each answer names
    the deployment that gave it (the http probe's ``deployment_header``), and the canary's answers are judged
    against stable's within that one stream, on the same clock."""

    canary: DeploymentId
    stable: DeploymentId


@message_type("golive.cmd.prober.run.v1")
class RunProbe(Message):
    """Run one probe for ``duration_s`` seconds (or until a StopProbe names it) and judge it.

    With ``window_s``, a ProbeWindow event is published every window; with ``baseline`` (the stable
    deployment), the baseline is probed with the same load at the same time and the result compares them."""

    probe: ProbeSpec
    duration_s: float = Field(gt=0)
    concurrency: int = Field(default=1, ge=1, le=256)
    load: LoadSpec = LoadSpec(mode="closed")
    window_s: float | None = Field(default=None, gt=0)
    baseline: ProbeSpec | None = None
    thresholds: Thresholds = Thresholds()
    label: str = ""
    # the sequential judge of the probe against its baseline: its false-alarm budget over the run (plan analysis.alpha)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    # a check on the production alias: the stream's answers told apart by deployment, canary judged against stable
    split: SplitTraffic | None = None
    # the index of the first window published: a stage's extended hold (analysis.inconclusive: extend) numbers its
    # windows on from those its hold sent, so no two windows of one stage share an index
    first_window: int = Field(default=0, ge=0)

    @field_validator("load")
    @classmethod
    def _unsaid_mode_is_closed(cls, load: LoadSpec) -> LoadSpec:
        # the command runs what it says: a plan's unsaid mode is resolved by the coordinator (plan.checks.hold_load)
        return load if load.mode is not None else load.model_copy(update={"mode": "closed"})

    @model_validator(mode="after")
    def _baseline_of_the_same_kind(self) -> RunProbe:
        if self.baseline is not None and self.baseline.kind != self.probe.kind:
            raise ValueError(f"baseline is a {self.baseline.kind} probe but the probe is {self.probe.kind}; compare like with like")
        if self.split is not None and (self.baseline is not None or self.probe.kind != "http"):
            raise ValueError("split compares the deployments within one http probe's stream; it takes no baseline")
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
