"""The plan: a go-live as a YAML file, validated before anything runs.

Errors name the path and, when the plan came from a file, the line: ``canary.stages[2].weight (line
31): 40 is not higher than the previous stage (50); weights must increase and end at 100``.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.coordinator.durations import Duration
from shared.commands import MigrationPreflight, MigrationRetry, MigrationSession, MigrationWaiver, NotificationsSpec, ProviderSpec, Thresholds
from shared.commands import LoadSpec, ParamGenerator
from typing import Literal


class _Problem(ValueError):
    """A problem a validator found below the model it validates; ``where`` locates it in that model."""

    def __init__(self, where: tuple[str | int, ...], reason: str) -> None:
        super().__init__(f"{_path(list(where))}: {reason}")
        self.where = where
        self.reason = reason


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(Strict):
    url_env: str = Field(description="Environment variable holding the primary's URL (never the URL itself)")


class Traffic(Strict):
    provider: ProviderSpec = ProviderSpec()


class Notifications(NotificationsSpec):
    """The communication plan (shared.commands.NotificationsSpec): the notifier reads it from RunStarted."""


class Statement(Strict):
    name: str
    sql: str
    waive: list[MigrationWaiver] = Field(default=[], description="lint rules waived for this statement, each with a reason")
    reapply: bool = Field(default=False, description="apply even if this name was applied with another statement")


class Migrations(Strict):
    session: MigrationSession = MigrationSession()
    preflight: MigrationPreflight = MigrationPreflight()
    retry: MigrationRetry = MigrationRetry()
    statements: list[Statement] = []


class Probe(Strict):
    """A named probe. ``sql`` (default): a query, as the runbook's db_performance_check names them
    (stripe_upsert, ...); ``http``: an endpoint checked like ``curl -f``; ``pg_health``: replica lag, WAL lag,
    connection use and long transactions. Secrets by environment variable: ``database_url_env`` (default:
    the plan's database), ``headers_env``, ``replica_url_envs``."""

    kind: Literal["sql", "http", "pg_health"] = "sql"
    query: str | None = None
    params: list = []
    params_from: ParamGenerator | None = None
    allow_writes: bool = Field(default=False, description="let the query's writes commit (default: always rolled back)")
    database_url_env: str | None = None
    url: str | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    headers_env: dict[str, str] = {}
    body: str | None = None
    expect_status: int | None = None
    body_contains: str | None = None
    replica_url_envs: list[str] = []
    long_transaction: Duration = 60.0
    timeout_ms: int = Field(default=2_000, gt=0)

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> Probe:
        if self.kind == "sql" and not self.query:
            raise _Problem(("query",), "an sql probe needs a query")
        if self.kind == "http" and not self.url:
            raise _Problem(("url",), "an http probe needs a url")
        if self.params and self.params_from is not None:
            raise _Problem(("params_from",), "give params (fixed values) or params_from (a generator), not both")
        return self


class Check(Strict):
    probe: str
    duration: Duration | None = Field(default=None, description="default: the stage's hold")
    concurrency: int = Field(default=1, ge=1, le=256)
    load: LoadSpec = Field(default=LoadSpec(), description="closed loop (default) or open loop at a rate, warm-up")
    window: Duration | None = Field(default=None, description="publish a probe_window event every window")
    thresholds: Thresholds = Thresholds()


class Stage(Strict):
    weight: int = Field(gt=0, le=100)
    hold: Duration
    approval: bool = Field(default=False, description="wait for `golive approve RUN --stage N` before shifting")
    checks: list[Check] = []


class Canary(Strict):
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_increase_to_100(self) -> Canary:
        previous = 0
        for i, stage in enumerate(self.stages):
            if stage.weight <= previous:
                raise _Problem(
                    ("stages", i, "weight"),
                    f"{stage.weight} is not higher than the previous stage ({previous}); weights must increase and end at 100",
                )
            previous = stage.weight
        if previous != 100:
            raise _Problem(
                ("stages", len(self.stages) - 1, "weight"),
                f"the last stage's weight is {previous}; the last stage must send 100% to the new deployment",
            )
        return self


class Rollback(Strict):
    drop_indexes: bool = Field(default=False, description="drop the indexes this run built when it rolls back")


class Timeouts(Strict):
    step: Duration = Field(default=600.0, gt=0, description="how long a command may go unanswered beyond its own work")
    approval: Duration = Field(default=3600.0, gt=0, description="how long a gate waits for approval before rolling back")


class MaintenanceWindow(Strict):
    """When a run may start: ``days`` at ``start``-``end`` local time in ``timezone`` (runbook: Sun 02:00-04:00 UTC)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Helsinki or UTC)") from None
        return value


class Window(Strict):
    """The maintenance window and what to do before it closes."""

    maintenance: MaintenanceWindow | None = None
    rollback: Duration = Field(default=600.0, ge=0, description="time a rollback needs (runbook: under 10 min)")
    at_end: Literal["rollback", "continue"] = Field(
        default="rollback", description="rollback: start compensating while `rollback` still fits in the window")


class Retries(Strict):
    """Transient failures (a dependency that timed out, a 503) are retried with exponential backoff;
    compensations are retried on any failure but invalid input, since undoing must not give up lightly."""

    attempts: int = Field(default=3, ge=1, le=10, description="tries per step, the first included")
    backoff: Duration = Field(default=2.0, gt=0, description="wait before the second try; doubles each time")
    max_backoff: Duration = Field(default=60.0, gt=0)


class Plan(Strict):
    """A go-live plan. See plans/skeleton.yaml for a small one."""

    name: str
    database: Database
    traffic: Traffic = Traffic()
    notifications: Notifications = Notifications()
    migrations: Migrations = Migrations()
    probes: dict[str, Probe] = {}
    smoke: list[Check] = []
    canary: Canary
    rollback: Rollback = Rollback()
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    window: Window = Window()

    @model_validator(mode="after")
    def _probes_exist(self) -> Plan:
        checks = [(("smoke", i), c) for i, c in enumerate(self.smoke)] + [
            (("canary", "stages", s, "checks", i), c) for s, st in enumerate(self.canary.stages) for i, c in enumerate(st.checks)
        ]
        for where, check in checks:
            if check.probe not in self.probes:
                known = ", ".join(sorted(self.probes)) or "none"
                raise _Problem((*where, "probe"), f"no probe named {check.probe!r} (probes: {known})")
            if where[0] == "smoke" and check.duration is None:
                raise _Problem((*where, "duration"), "a smoke check needs a duration")
        first: dict[str, int] = {}
        for i, statement in enumerate(self.migrations.statements):
            if statement.name in first:
                raise _Problem(
                    ("migrations", "statements", i, "name"),
                    f"{statement.name!r} is already the name of statements[{first[statement.name]}]; names must be unique",
                )
            first[statement.name] = i
        return self


class PlanError(ValueError):
    """An invalid plan: every problem with its path, line and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise PlanError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_plan(text, str(path))


def parse_plan(text: str, origin: str = "<plan>") -> Plan:
    """Validate plan YAML text; PlanError on any problem."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise PlanError([f"{origin}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PlanError([f"{origin}: a plan is a YAML mapping"])
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError([_describe(err, root) for err in exc.errors()]) from None


def _describe(err: dict, root: yaml.Node | None) -> str:
    loc = list(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, _Problem):  # found by a model's own validator: point at the value, not the model
        loc += problem.where
        message = problem.reason
    path = _path(loc)
    line = _line_of(root, loc)
    where = f"{path} (line {line})" if line else path
    return f"{where}: {message}"


def _path(loc: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(plan)"


def _line_of(node: yaml.Node | None, loc: list) -> int | None:
    """Line of the deepest YAML node that ``loc`` reaches (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
