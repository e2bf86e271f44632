"""The plan: a go-live as one typed model, the sections of shared/plan/ put together with the rules that span
them (every check names a probe, guards read a pg_health probe, ...).

Read a plan once, where it comes in, and pass the Plan on: ``load_plan``/``parse_plan`` (a file, files.py),
``plan_from_dict`` (a StartRun), ``plan_of`` (a stored run's ``run_started``). Each upgrades an older plan
version first (shared/plan_versions.py).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from golive.shared.plan.base import MAX_ITEMS, Problem, Strict
from golive.shared.plan.canary import Analysis, Baseline, Canary, Guards
from golive.shared.plan.checks import Check, PreflightItem
from golive.shared.plan.migrations import Migrations
from golive.shared.plan.notifications import Notifications
from golive.shared.plan.post_deploy import PostDeploy
from golive.shared.plan.probes import HttpProbe, PgHealthProbe, Probe, ProbeContext, ProbeSpec
from golive.shared.plan.recovery import Retries, Rollback, Timeouts
from golive.shared.plan.targets import DEPLOYMENT, Targets
from golive.shared.plan.traffic import LockIn, Traffic
from golive.shared.plan.window import Window
from golive.shared.plan_versions import CURRENT as PLAN_VERSION
from golive.shared.plan_versions import plan_data, upgrade_plan
from golive.shared.secrets import NO_PASSWORD_IN_PLANS, EnvName, find_password

if TYPE_CHECKING:
    from golive.shared.events import RunStarted


class Database(Strict):
    url_env: EnvName = Field(description="Environment variable holding the primary's URL (never the URL itself)")


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
            raise Problem(where, NO_PASSWORD_IN_PLANS)
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
                raise Problem((*where, "probe"), f"no probe named {check.probe!r} (probes: {known})")
            if where[0] in needs_duration and check.duration is None:
                raise Problem((*where, "duration"), f"a {str(where[0]).replace('_', ' ')} check needs a duration")
        first: dict[str, int] = {}
        for i, statement in enumerate(self.migrations.statements):
            if statement.name in first:
                raise Problem(
                    ("migrations", "statements", i, "name"),
                    f"{statement.name!r} is already the name of statements[{first[statement.name]}]; names must be unique",
                )
            first[statement.name] = i
        return self

    @model_validator(mode="after")
    def _paths_have_a_deployment_url(self) -> Plan:
        for name, probe in self.probes.items():
            if isinstance(probe, HttpProbe) and probe.url.startswith("/") and self.targets.deployment_url is None:
                raise Problem(("probes", name, "url"),
                              "a path needs targets.deployment_url to resolve against (or give a full http(s) url)")
        return self

    @model_validator(mode="after")
    def _guards_and_baseline_have_their_probes(self) -> Plan:
        if self.guards is not None:
            probe = self.probes.get(self.guards.probe)
            if probe is None:
                known = ", ".join(sorted(n for n, p in self.probes.items() if isinstance(p, PgHealthProbe))) or "none"
                raise Problem(("guards", "probe"), f"no probe named {self.guards.probe!r} (pg_health probes: {known})")
            if not isinstance(probe, PgHealthProbe):
                raise Problem(("guards", "probe"), f"{self.guards.probe!r} is a {probe.kind} probe; guards read a "
                                                    "pg_health probe's gauges (replica lag, WAL lag, connection use)")
            if not self.guards.limits():
                raise Problem(("guards",), "set at least one limit: replica_lag_s, wal_lag_bytes, connection_use_pct "
                                           "or long_transactions")
        if self.baseline is not None and not any(
            self.names_deployment(c.probe) for stage in self.canary.stages for c in stage.checks
        ):
            raise Problem(("baseline",), f"a baseline compares http checks whose url names {DEPLOYMENT} (or is a path on "
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
                    raise Problem(("canary", "stages", s, "checks", i, "probe"),
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
        """Whether probe ``probe_name`` aims at one deployment (an http url filled per deployment)."""
        probe = self.probes.get(probe_name)
        return probe is not None and probe.aims_at_deployment()

    def probe_spec(self, probe_name: str, deployment: str) -> ProbeSpec:
        """Probe ``probe_name`` as a RunProbe carries it, aimed at ``deployment``: named, its database and url
        resolved (a path on targets.deployment_url, ``{deployment}`` filled)."""
        context = ProbeContext(database_url_env=self.database.url_env, deployment=deployment, targets=self.targets)
        return self.probes[probe_name].spec(probe_name, context)

    def probe_url(self, probe_name: str, deployment: str) -> str:
        """The url of http probe ``probe_name`` for ``deployment``."""
        probe = self.probes[probe_name]
        assert isinstance(probe, HttpProbe), f"{probe_name} is a {probe.kind} probe, not an http one"
        return self.targets.url_of(probe.url, deployment)


def plan_of(started: RunStarted) -> Plan:
    """The plan a run started with (its ``run_started``), upgraded to today's version and validated: the one way
    to read a stored run's plan. PlanVersionError when this golive cannot read its version."""
    # stored: read as it was written; fields the plan's format of the time ignored are ignored (probes/__init__.py)
    return Plan.model_validate(plan_data(started), context={"stored": True})


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """A plan from a dict (a StartRun's, a parsed file's): upgraded from its ``version`` (absent: 1), validated."""
    return Plan.model_validate(upgrade_plan(data))


def plan_schema() -> str:
    """The plan's JSON Schema as text (docs/plan.schema.json; `golive plan schema` prints it): editors use it
    to complete and check plan files. Durations are numbers of seconds or strings like ``30s``."""
    return json.dumps(Plan.model_json_schema(mode="validation"), indent=2, sort_keys=True) + "\n"
