"""What the tests build again and again, built in one place: the skeleton plan (as a dict, as a file, as
run_started carries it) and the events of one run as the stream holds them.

A test changes the plan through ``edit(plan_dict)``, and tells a run's story with ``RunEvents.add``; what a story
means in one area (a notifier's run, a report's run) lives beside that area's tests, built on ``RunEvents``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from golive.plans import SKELETON
from golive.shared.envelope import Envelope, Message, new_envelope
from golive.shared.events import RunStarted
from golive.shared.plan import Plan, parse_plan
from golive.shared.plan_versions import CURRENT
from golive.shared.subjects import Subjects

T0 = datetime(2026, 1, 4, 2, 0, tzinfo=UTC)  # a Sunday at 02:00 UTC, inside the skeleton's maintenance window

PlanEdit = Callable[[dict], None]


# --- the skeleton plan --------------------------------------------------------------------------------------------


# The tests' skeleton probes at a set rate, open loop, where the shipped one probes closed loop (as many queries as the
# database answers: thousands a second, each stage, every run, a core of the prober's and most of one of PostgreSQL's).
# The tests judge what a run does, not how fast the database is: RATE requests a second are enough for a healthy
# check of a 0.5 s hold to pass its limits clearly (shared/limits.py: 104 requests for a p95 or a 5% error rate at
# 99%), with an error-rate limit of 5% and a smoke p95 that a busy test machine keeps.
TEST_RATE = 250.0
TEST_ERROR_RATE_PCT = 5.0


def _tests_load(plan: dict) -> None:
    for check in plan["smoke"]:
        check.update(load={"mode": "open", "rate": TEST_RATE}, concurrency=4)
        check["thresholds"].update(p95_ms=200, error_rate_pct=TEST_ERROR_RATE_PCT)
    for stage in plan["canary"]["stages"]:
        for check in stage["checks"]:
            check["load"] = {"rate": TEST_RATE}  # a hold's default mode: open loop
            check["thresholds"]["error_rate_pct"] = TEST_ERROR_RATE_PCT


def skeleton_dict(hold: str | None = None, smoke: str | None = None, edit: PlanEdit | None = None) -> dict:
    """The skeleton plan (golive.plans.SKELETON) as a dict, probing at TEST_RATE: every stage's hold set to ``hold``
    and the smoke test's duration to ``smoke`` when given, then changed by ``edit(plan)``."""
    plan = yaml.safe_load(SKELETON.read_text())
    _tests_load(plan)
    if smoke is not None:
        plan["smoke"][0]["duration"] = smoke
    if hold is not None:
        for stage in plan["canary"]["stages"]:
            stage["hold"] = hold
    if edit:
        edit(plan)
    return plan


def write_plan(folder: Path, plan: dict, name: str = "plan.yaml") -> Path:
    """``plan`` as a YAML file ``folder/name``, the way a user hands it to `golive`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(plan, allow_unicode=True))
    return path


def skeleton_plan(tmp_path: Path, hold: str = "1s", smoke: str = "1s", edit: PlanEdit | None = None) -> Path:
    """The skeleton plan with short holds, changed by ``edit(plan_dict)`` if given, written under tmp_path."""
    return write_plan(tmp_path, skeleton_dict(hold, smoke, edit))


def checkout_plan(rest: str) -> Plan:
    """A small plan named checkout, with one SQL probe ``recent``, and ``rest``: its canary and whatever else a test
    needs (YAML at the top level)."""
    return parse_plan("name: checkout\ndatabase: {url_env: DB_URL}\nprobes:\n  recent: {query: SELECT 1}\n"
                      + textwrap.dedent(rest))


def carried(plan: dict | Plan) -> dict:
    """``plan`` validated, as run_started carries it (JSON, every default filled in, without its version, which
    run_started carries as ``plan_version``: services/coordinator/service.py)."""
    if isinstance(plan, dict):
        plan = parse_plan(yaml.safe_dump(plan))
    return plan.model_dump(mode="json", exclude={"version"})


# --- the events of one run ----------------------------------------------------------------------------------------


class RunEvents:
    """The events of one run as the stream holds them: each from the service its type names, on its subject under
    ``root``, with ids the run's own and times ``at`` seconds after ``start`` (by default one second after the
    previous event). ``plan`` is what run_started carries (default: the skeleton's)."""

    def __init__(self, run_id: str = "run-1", plan: dict | Plan | None = None, *, start: datetime = T0,
                 root: str = "golive") -> None:
        self.run_id, self.start_time, self.subjects = run_id, start, Subjects(root)
        self.plan = carried(skeleton_dict()) if plan is None else plan if isinstance(plan, dict) else carried(plan)
        self.events: list[Envelope] = []

    def add(self, data: Message, at: float | None = None, *, correlationid: str | None = None) -> Envelope:
        """``data`` published by the service its type names, ``at`` seconds into the run."""
        n = len(self.events)
        service = data.TYPE.split(".")[1]
        envelope = new_envelope(data, id=f"{self.run_id}/e{n}", source=f"/golive/{service}", runid=self.run_id,
                                subject=self.subjects.event(self.run_id, service, data.short_name()),
                                time=self.start_time + timedelta(seconds=n if at is None else at),
                                correlationid=correlationid)
        self.events.append(envelope)
        return envelope

    def started(self, at: float | None = None, **fields: Any) -> Envelope:
        """The run's run_started, as the coordinator records it: the plan's name, dpl_new replacing dpl_old, unless
        ``fields`` say otherwise."""
        fields = {"plan_name": self.plan.get("name", "skeleton"), "deploy_id": "dpl_new",
                  "previous_deploy_id": "dpl_old", "plan_version": self.plan.get("version", CURRENT), **fields}
        return self.add(RunStarted(plan=self.plan, **fields), at)
