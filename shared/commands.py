"""Commands: what one service asks another to do. Subject ``<root>.cmd.<service>.<action>``.

A command names its target by its ``TYPE``: ``golive.cmd.<service>.<action>.v1``. Commands carry
everything the service needs (services share no plan and no database of their own), and name secrets by
environment variable, never by value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import Message, message_type


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def command_target(message: type[Message]) -> tuple[str, str]:
    """(service, action) of a command type: ``golive.cmd.migrator.apply.v1`` -> (migrator, apply)."""
    parts = message.TYPE.split(".")
    if len(parts) != 5 or parts[1] != "cmd":
        raise ValueError(f"{message.TYPE} is not a command type")
    return parts[2], parts[3]


# --- coordinator -------------------------------------------------------------------------------


@message_type("golive.cmd.coordinator.start_run.v1")
class StartRun(Message):
    """Start a go-live: the validated plan (as a plain dict) and the deployment pair."""

    plan: dict[str, Any]
    deploy_id: str
    previous_deploy_id: str | None = None
    requested_by: str = "cli"
    force_window: bool = False  # start outside the plan's maintenance window (recorded)


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


# --- migrator ----------------------------------------------------------------------------------


class MigrationStatement(Spec):
    name: str
    sql: str


class MigrationSession(Spec):
    """Session settings applied on the migrator's dedicated connection (SET, not SET LOCAL)."""

    lock_timeout_ms: int = Field(default=5_000, ge=0)
    statement_timeout_ms: int = Field(default=0, ge=0)
    application_name: str = "golive-migrator"


@message_type("golive.cmd.migrator.apply.v1")
class ApplyMigrations(Message):
    """Run statements one at a time, each alone in autocommit, outside any transaction."""

    database_url_env: str
    statements: list[MigrationStatement]
    session: MigrationSession = MigrationSession()


@message_type("golive.cmd.migrator.revert.v1")
class RevertMigrations(Message):
    """Compensation: drop the indexes that ``statements`` create (DROP INDEX CONCURRENTLY IF EXISTS), newest first."""

    database_url_env: str
    statements: list[MigrationStatement]
    session: MigrationSession = MigrationSession()


# --- prober ------------------------------------------------------------------------------------


class Thresholds(Spec):
    """Limits a probe is judged by. Absent limits are not judged."""

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    error_rate_pct: float | None = Field(default=None, ge=0, le=100)
    min_samples: int = Field(default=1, ge=1)


class SqlProbeSpec(Spec):
    kind: Literal["sql"] = "sql"
    name: str
    database_url_env: str
    query: str
    params: list[Any] = []
    timeout_ms: int = Field(default=2_000, gt=0)


@message_type("golive.cmd.prober.run.v1")
class RunProbe(Message):
    """Run one probe for ``duration_s`` seconds at a fixed concurrency and judge it."""

    probe: SqlProbeSpec
    duration_s: float = Field(gt=0)
    concurrency: int = Field(default=1, ge=1, le=256)
    thresholds: Thresholds = Thresholds()
    label: str = ""


# --- traffic -----------------------------------------------------------------------------------


class ProviderSpec(Spec):
    """Which traffic provider to use and its settings (secrets by env var name)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = "dry-run"


@message_type("golive.cmd.traffic.shift.v1")
class ShiftTraffic(Message):
    """Send ``weight`` percent of traffic to the canary deployment, then read the weight back."""

    provider: ProviderSpec
    canary: str
    stable: str | None = None
    weight: int = Field(ge=0, le=100)


@message_type("golive.cmd.traffic.rollback.v1")
class RollbackTraffic(Message):
    """Compensation: send all traffic back to ``to`` (the previous deployment); canary weight 0."""

    provider: ProviderSpec
    canary: str
    to: str | None = None


# --- notifier ----------------------------------------------------------------------------------


class SinkSpec(Spec):
    type: Literal["slack"] = "slack"
    webhook_url_env: str


@message_type("golive.cmd.notifier.notify.v1")
class Notify(Message):
    """Post one message. ``kind`` picks the runbook template; ``fields`` fill it."""

    sink: SinkSpec
    kind: Literal["start", "success", "rollback", "needs_human"]
    title: str
    fields: dict[str, str] = {}
