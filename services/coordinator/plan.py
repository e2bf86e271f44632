"""The plan: a go-live as a YAML file, validated before anything runs.

Errors name the path and, when the plan came from a file, the line: ``canary.stages[2].weight (line
31): 40 is not higher than the previous stage (50); weights must increase and end at 100``.
"""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path
from typing import Annotated, Callable, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from services.coordinator.durations import Duration
from services.coordinator.plan_yaml import UnsafeYaml, load_yaml, read_plan_file
from shared.commands import (
    HttpUrl,
    LoadSpec,
    MessageTemplate,
    MigrationPreflight,
    MigrationRetry,
    MigrationSession,
    MigrationWaiver,
    NotificationRoute,
    NotificationSink,
    NotificationsSpec,
    ParamGenerator,
    ProviderSpec,
    Thresholds,
)
from shared.events import RunStarted
from shared.plan_versions import CURRENT as PLAN_VERSION
from shared.plan_versions import PlanVersionError, plan_data, upgrade_plan
from shared.secrets import NO_PASSWORD_IN_PLANS, EnvName, PlainUrl, find_password

DEPLOYMENT = "{deployment}"  # in an http probe's url (or targets.deployment_url): the deployment's id
# A plan's lists and maps are bounded so that a checked plan is also small to hold, send and run (the runbook's
# plan has a handful of each; a generated 50 MB plan once asked for 397 index builds)
MAX_ITEMS = 100
MAX_STAGES = 20


class _Problem(ValueError):
    """A problem a validator found below the model it validates; ``where`` locates it in that model."""

    def __init__(self, where: tuple[str | int, ...], reason: str) -> None:
        super().__init__(f"{_path(list(where))}: {reason}")
        self.where = where
        self.reason = reason


class Strict(BaseModel):
    # errors never quote the input back: a value in the wrong field may be a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Database(Strict):
    url_env: EnvName = Field(description="Environment variable holding the primary's URL (never the URL itself)")


class Traffic(Strict):
    provider: ProviderSpec = ProviderSpec()


class Notifications(NotificationsSpec):
    """The communication plan (shared.commands.NotificationsSpec): the notifier reads it from RunStarted."""

    # bounded like every list of a plan (MAX_ITEMS): a plan file is checked, then held and sent whole
    sinks: dict[str, NotificationSink] = Field(default={}, max_length=MAX_ITEMS)
    routes: list[NotificationRoute] = Field(default=[], max_length=MAX_ITEMS,
                                            description="default: every kind in `on` to every sink")
    templates: dict[str, MessageTemplate] = Field(default={}, max_length=MAX_ITEMS)


class Statement(Strict):
    name: str
    sql: str
    waive: list[MigrationWaiver] = Field(default=[], description="lint rules waived for this statement, each with a reason")
    reapply: bool = Field(default=False, description="apply even if this name was applied with another statement")


class Migrations(Strict):
    session: MigrationSession = MigrationSession()
    preflight: MigrationPreflight = MigrationPreflight()
    retry: MigrationRetry = MigrationRetry()
    statements: list[Statement] = Field(default=[], max_length=MAX_ITEMS)


class Probe(Strict):
    """A named probe. ``sql`` (default): a query, as the runbook's db_performance_check names them
    (stripe_upsert, ...); ``http``: an endpoint checked like ``curl -f``; ``pg_health``: replica lag, WAL lag,
    connection use and long transactions. Secrets by environment variable: ``database_url_env`` (default:
    the plan's database), ``headers_env``, ``replica_url_envs``."""

    kind: Literal["sql", "http", "pg_health"] = "sql"
    query: str | None = None
    params: list = Field(default=[], max_length=MAX_ITEMS)
    params_from: ParamGenerator | None = None
    allow_writes: bool = Field(default=False, description="let the query's writes commit (default: always rolled back)")
    database_url_env: EnvName | None = None
    url: PlainUrl | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    headers_env: dict[str, EnvName] = {}
    body: str | None = None
    expect_status: int | None = None
    body_contains: str | None = None
    replica_url_envs: list[EnvName] = []
    pgbouncer_admin_url_env: EnvName | None = Field(
        default=None, description="pg_health: PgBouncer's admin console URL (database pgbouncer), to gauge each pool's use")
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


class Gate(Strict):
    """A manual step of the preflight: the run waits for `golive approve RUN` (runbook: "Confirm backup completion")."""

    gate: str = Field(min_length=1, description="what the operator confirms by approving")


def _preflight_kind(value: object) -> str:
    return "gate" if isinstance(value, Gate) or (isinstance(value, dict) and "gate" in value) else "check"


# each item is a check (a probe: backup confirmed by a SQL or HTTP probe, connectivity) or a manual gate
PreflightItem = Annotated[Annotated[Check, Tag("check")] | Annotated[Gate, Tag("gate")], Discriminator(_preflight_kind)]


class Stage(Strict):
    weight: int = Field(gt=0, le=100)
    hold: Duration
    approval: bool = Field(default=False, description="wait for `golive approve RUN --stage N` before shifting")
    checks: list[Check] = Field(default=[], max_length=MAX_ITEMS)


class Canary(Strict):
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)

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


class Targets(Strict):
    """Where deployments answer. ``deployment_url``: a template with ``{deployment}`` (Vercel-style per-deployment
    URLs); an http probe whose url is a path (``/api/health``) is resolved against it."""

    # or `${GOLIVE_APP_URL}/deployments/{deployment}`: the base from that environment variable where the prober runs
    deployment_url: HttpUrl | None = Field(default=None, examples=["https://app-{deployment}.vercel.app"])

    @field_validator("deployment_url")
    @classmethod
    def _names_the_deployment(cls, value: str | None) -> str | None:
        if value is not None and DEPLOYMENT not in value:
            raise ValueError(f"a deployment_url template must contain {DEPLOYMENT} (where the deployment id goes)")
        return value


class Analysis(Strict):
    """Per-window analysis of canary stage checks: each window of a check is judged against the check's
    thresholds as it closes, so a breaching stage fails without waiting for the end of its hold.

    Failed windows are counted per stage (all its checks together); consecutive failures per check."""

    interval: Duration = Field(default=30.0, gt=0, description="window length (a check's `window` overrides it)")
    min_samples: int = Field(default=20, ge=1, description="fewer requests in a window: inconclusive")
    failure_limit: int = Field(default=3, ge=1, description="failed windows in a stage that fail it")
    consecutive_failure_limit: int = Field(default=2, ge=1, description="consecutive failed windows of a check that fail the stage")
    inconclusive: Literal["ignore", "fail"] = Field(
        default="ignore", description="ignore: neither a failure nor a break of a streak; fail: counted as a failed window")


class Guards(Strict):
    """Database guards: a pg_health probe runs through every canary stage's hold, and one window over a limit
    fails the stage at once (runbook: replica lag, WAL lag, connection pool use)."""

    probe: str = Field(description="a pg_health probe of `probes`")
    sample_every: Duration = Field(default=1.0, gt=0, description="how often the gauges are read")
    replica_lag_s: float | None = Field(default=None, ge=0)
    wal_lag_bytes: float | None = Field(default=None, ge=0)
    connection_use_pct: float | None = Field(default=None, ge=0, le=100)
    long_transactions: int | None = Field(default=None, ge=0)

    def limits(self) -> dict[str, float]:
        """Gauge name -> limit, for the limits set."""
        return {k: v for k, v in self.model_dump(exclude={"probe", "sample_every"}).items() if v is not None}


class Baseline(Strict):
    """Canary no worse than stable: http checks whose url names ``{deployment}`` also probe the previous
    deployment with the same load at the same time; a significantly slower canary fails the check."""

    p95_increase_ms: float = Field(ge=0, description="how much higher the canary's p95 may be than stable's")


class LockIn(Strict):
    """After final validation: make the new deployment production (shared.commands.PromoteTraffic)."""

    promote: bool = Field(default=False, description="promote the canary; the run succeeds once it is read back")


class PostDeploy(Strict):
    """The runbook's "next 7 days": health checks every ``health_every`` and a summary every ``summary_every``
    for ``period`` after the run succeeded."""

    period: Duration = Field(default=7 * 86400.0, gt=0)
    health_every: Duration = Field(default=3600.0, gt=0)
    summary_every: Duration = Field(default=86400.0, gt=0)
    checks: list[Check] = Field(default=[], max_length=MAX_ITEMS)


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
    """A go-live plan. See golive/plans/skeleton.yaml for a small one."""

    version: int = Field(default=PLAN_VERSION, description=f"the plan format's version (absent: 1); golive reads older "
                                                           f"versions by upgrading them (current: {PLAN_VERSION})")
    name: str
    database: Database
    traffic: Traffic = Traffic()
    targets: Targets = Targets()
    notifications: Notifications = Notifications()
    preflight: list[PreflightItem] = Field(default=[], max_length=MAX_ITEMS,
                                           description="checks and manual gates before anything changes")
    migrations: Migrations = Migrations()
    probes: dict[str, Probe] = Field(default={}, max_length=MAX_ITEMS)
    smoke: list[Check] = Field(default=[], max_length=MAX_ITEMS)
    canary: Canary
    analysis: Analysis | None = Field(default=None, description="absent: a stage is judged on its totals only")
    guards: Guards | None = None
    baseline: Baseline | None = None
    final_validation: list[Check] = Field(default=[], max_length=MAX_ITEMS, description="after the last stage's hold")
    lock_in: LockIn = LockIn()
    post_deploy: PostDeploy | None = None
    rollback: Rollback = Rollback()
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    window: Window = Window()

    @model_validator(mode="before")
    @classmethod
    def _no_password_anywhere(cls, data: object) -> object:
        # before any field is read: a password pasted anywhere (an extra setting, a name, a query) stops the plan
        # here, so no other message can quote it and no RunStarted can carry it
        if (where := find_password(data)) is not None:
            raise _Problem(where, NO_PASSWORD_IN_PLANS)
        return data

    @field_validator("version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        # an older plan is upgraded before it is validated (plan_of, plan_from_dict, plan files)
        if value != PLAN_VERSION:
            raise ValueError(f"version {value} is not the current plan version ({PLAN_VERSION}); read plans through "
                             "plan_from_dict or plan_of, which upgrade older versions")
        return value

    @model_validator(mode="after")
    def _probes_exist(self) -> Plan:
        needs_duration = {"preflight", "smoke", "final_validation", "post_deploy"}
        for where, check in self.checks():
            if check.probe not in self.probes:
                known = ", ".join(sorted(self.probes)) or "none"
                raise _Problem((*where, "probe"), f"no probe named {check.probe!r} (probes: {known})")
            if where[0] in needs_duration and check.duration is None:
                raise _Problem((*where, "duration"), f"a {where[0].replace('_', ' ')} check needs a duration")
        first: dict[str, int] = {}
        for i, statement in enumerate(self.migrations.statements):
            if statement.name in first:
                raise _Problem(
                    ("migrations", "statements", i, "name"),
                    f"{statement.name!r} is already the name of statements[{first[statement.name]}]; names must be unique",
                )
            first[statement.name] = i
        return self

    @model_validator(mode="after")
    def _deployment_only_in_http_urls(self) -> Plan:
        for name, probe in self.probes.items():
            for field_name in ("query", "body"):
                if DEPLOYMENT in (getattr(probe, field_name) or ""):
                    raise _Problem(("probes", name, field_name),
                                   f"{DEPLOYMENT} is filled in http probe urls only; put it in an http probe's url")
            if probe.kind != "http" or not probe.url:
                continue
            if probe.url.startswith("/"):
                if self.targets.deployment_url is None:
                    raise _Problem(("probes", name, "url"),
                                   "a path needs targets.deployment_url to resolve against (or give a full http(s) url)")
            elif not probe.url.startswith(("http://", "https://", "${")):  # ${VAR}: the prober reads the base from VAR
                raise _Problem(("probes", name, "url"), "an http probe's url starts with http:// or https://, ${ENV_VAR} "
                                                        "(a base from the environment) or / (a path on "
                                                        "targets.deployment_url)")
        return self

    @model_validator(mode="after")
    def _guards_and_baseline_have_their_probes(self) -> Plan:
        if self.guards is not None:
            probe = self.probes.get(self.guards.probe)
            if probe is None:
                known = ", ".join(sorted(n for n, p in self.probes.items() if p.kind == "pg_health")) or "none"
                raise _Problem(("guards", "probe"), f"no probe named {self.guards.probe!r} (pg_health probes: {known})")
            if probe.kind != "pg_health":
                raise _Problem(("guards", "probe"), f"{self.guards.probe!r} is a {probe.kind} probe; guards read a "
                                                     "pg_health probe's gauges (replica lag, WAL lag, connection use)")
            if not self.guards.limits():
                raise _Problem(("guards",), "set at least one limit: replica_lag_s, wal_lag_bytes, connection_use_pct "
                                            "or long_transactions")
        if self.baseline is not None and not any(
            self.names_deployment(c.probe) for stage in self.canary.stages for c in stage.checks
        ):
            raise _Problem(("baseline",), f"a baseline compares http checks whose url names {DEPLOYMENT} (or is a path on "
                                          "targets.deployment_url); no canary stage has one")
        return self

    @model_validator(mode="after")
    def _stage_windows_tell_checks_apart(self) -> Plan:
        # a window names its probe only: two checks of one probe in a stage (or the guard's) would be confused
        guard = self.guards.probe if self.guards else None
        for s, stage in enumerate(self.canary.stages):
            seen: set[str] = set()
            for i, check in enumerate(stage.checks):
                if check.probe in seen or check.probe == guard:
                    what = "the guard probe, which runs in every stage already" if check.probe == guard else "checked twice"
                    raise _Problem(("canary", "stages", s, "checks", i, "probe"),
                                   f"{check.probe!r} is {what}; a stage checks each probe once")
                seen.add(check.probe)
        return self

    def checks(self) -> list[tuple[tuple[str | int, ...], Check]]:
        """Every check of the plan with where it is (for validation and errors)."""
        found: list[tuple[tuple[str | int, ...], Check]] = [
            (("preflight", i), item) for i, item in enumerate(self.preflight) if isinstance(item, Check)]
        found += [(("smoke", i), c) for i, c in enumerate(self.smoke)]
        found += [(("canary", "stages", s, "checks", i), c)
                  for s, st in enumerate(self.canary.stages) for i, c in enumerate(st.checks)]
        found += [(("final_validation", i), c) for i, c in enumerate(self.final_validation)]
        if self.post_deploy is not None:
            found += [(("post_deploy", "checks", i), c) for i, c in enumerate(self.post_deploy.checks)]
        return found

    def names_deployment(self, probe_name: str) -> bool:
        """Whether probe ``probe_name`` is an http probe aimed at one deployment (its url is filled per deployment)."""
        probe = self.probes.get(probe_name)
        return bool(probe and probe.kind == "http" and probe.url
                    and (DEPLOYMENT in probe.url or probe.url.startswith("/")))

    def probe_url(self, probe_name: str, deployment: str) -> str:
        """The url of http probe ``probe_name`` for ``deployment``: a path is resolved on targets.deployment_url,
        ``{deployment}`` is replaced by the deployment's id."""
        url = self.probes[probe_name].url or ""
        if url.startswith("/") and self.targets.deployment_url:
            url = self.targets.deployment_url.rstrip("/") + url
        return url.replace(DEPLOYMENT, deployment)


def plan_of(started: RunStarted) -> Plan:
    """The plan a run started with (its ``run_started``), upgraded to today's version and validated: the one way
    to read a stored run's plan. PlanVersionError when this golive cannot read its version."""
    return Plan.model_validate(plan_data(started))


def plan_from_dict(data: dict) -> Plan:
    """A plan from a dict (a StartRun's, a parsed file's): upgraded from its ``version`` (absent: 1), validated."""
    return Plan.model_validate(upgrade_plan(data))


def plan_schema() -> str:
    """The plan's JSON Schema as text (docs/plan.schema.json; `golive plan schema` prints it): editors use it
    to complete and check plan files. Durations are numbers of seconds or strings like ``30s``."""
    return json.dumps(Plan.model_json_schema(mode="validation"), indent=2, sort_keys=True) + "\n"


class PlanError(ValueError):
    """An invalid plan: every problem with its path, line and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; raise PlanError listing every problem."""
    return load_plan_with_lines(path)[0]


def load_plan_with_lines(path: Path) -> tuple[Plan, Callable[[list], int | None]]:
    """The valid plan in ``path`` and the line of a path in it (``["notifications", "templates", "x"]`` -> 12),
    for checks that run after validation; PlanError listing every problem. The file is read and parsed within
    bounds (plan_yaml: at most 1 MiB, no aliases, no deep nesting) whatever it holds."""
    try:
        text = read_plan_file(path)
    except OSError as exc:
        raise PlanError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnsafeYaml as exc:
        raise PlanError([f"{path}: {exc.problem}"]) from None
    plan, root = _parse(text, str(path))
    return plan, lambda loc: _line_of(root, list(loc))


def parse_plan(text: str, origin: str = "<plan>") -> Plan:
    """Validate plan YAML text; PlanError on any problem."""
    return _parse(text, origin)[0]


def _parse(text: str, origin: str) -> tuple[Plan, yaml.Node | None]:
    try:
        data, root = load_yaml(text)
    except UnsafeYaml as exc:
        raise PlanError([f"{origin}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PlanError([f"{origin}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PlanError([f"{origin}: a plan is a YAML mapping"])
    try:
        data = upgrade_plan(data)
    except PlanVersionError as exc:
        raise PlanError([f"{_where(['version'], root)}: {exc}"]) from None
    try:
        return Plan.model_validate(data), root
    except ValidationError as exc:
        raise PlanError([_describe(err, root) for err in exc.errors()]) from None


def _describe(err: dict, root: yaml.Node | None) -> str:
    loc = [p for i, p in enumerate(err["loc"]) if not (i == 2 and err["loc"][0] == "preflight" and p in ("check", "gate"))]
    message = err["msg"].removeprefix("Value error, ")
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, _Problem):  # found by a model's own validator: point at the value, not the model
        loc += problem.where
        message = problem.reason
    return f"{_where(loc, root)}: {message}"


def _where(loc: list, root: yaml.Node | None) -> str:
    path = _path(loc)
    line = _line_of(root, loc)
    return f"{path} (line {line})" if line else path


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
