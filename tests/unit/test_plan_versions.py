"""Plan versions: a plan stored in run_started 400 days ago is read by today's code through explicit upgrades."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest
import yaml

from golive.services.coordinator.saga import decide
from golive.shared import plan_versions
from golive.shared.envelope import new_envelope
from golive.shared.events import RunStarted
from golive.shared.plan import Plan, PlanError, parse_plan, plan_from_dict, plan_of
from golive.shared.plan_versions import CURRENT, PlanVersionError, plan_data, upgrade_plan
from tests.builders import SKELETON as SKELETON_FILE

SKELETON = SKELETON_FILE.read_text()
UNVERSIONED = re.sub(r"(?m)^version:.*\n", "", SKELETON)  # the skeleton as plans were written before versions


def todays_plan() -> dict:
    """The skeleton plan as a run stores it (services/coordinator/service.py: without its version key)."""
    return parse_plan(SKELETON).model_dump(mode="json", exclude={"version"})


def version_0(plan: dict) -> dict:
    """A synthetic older format: what a real rename looks like. Version 0 called ``rollback.drop_indexes``
    ``drop_new_indexes`` and a stage's ``hold`` ``hold_for``."""
    old = copy.deepcopy(plan)
    old["rollback"] = {"drop_new_indexes": old["rollback"].pop("drop_indexes")}
    for stage in old["canary"]["stages"]:
        stage["hold_for"] = stage.pop("hold")
    return old


def upgrade_0_to_1(plan: dict) -> dict:
    plan["rollback"] = {"drop_indexes": plan["rollback"].pop("drop_new_indexes")}
    for stage in plan["canary"]["stages"]:
        stage["hold"] = stage.pop("hold_for")
    return plan


def started(plan: dict, **fields) -> RunStarted:
    return RunStarted(plan=plan, plan_name="skeleton", deploy_id="dpl_new", **fields)


def test_a_run_started_without_plan_version_reads_its_plan_as_version_1():
    # today's stored runs (and tests/recorded/events-v1.jsonl) have no plan_version
    stored = RunStarted.model_validate({"plan": todays_plan(), "plan_name": "skeleton", "deploy_id": "dpl_new"})

    assert stored.plan_version == 1
    plan = plan_of(stored)
    assert plan.version == CURRENT == 2
    assert plan == parse_plan(SKELETON)


def test_an_older_plan_in_run_started_is_upgraded_by_its_registered_function(monkeypatch):
    monkeypatch.setitem(plan_versions.UPGRADES, 0, upgrade_0_to_1)
    old = version_0(todays_plan())
    assert old["rollback"] == {"drop_new_indexes": True}
    stored = started(old, plan_version=0)

    plan = plan_of(stored)

    assert plan.rollback.drop_indexes is True
    assert [s.hold for s in plan.canary.stages] == [2.0, 2.0, 2.0]
    assert stored.plan == old  # the stored event is read, never changed
    # and the coordinator folds the old run with today's model: replay, status and resume go through here
    state, _ = decide(None, new_envelope(stored, id="run-old/started", source="/golive/coordinator",
                                         runid="run-old", time=datetime(2026, 1, 4, 2, 0, tzinfo=UTC)))
    assert state is not None and state.plan == plan


def test_the_notifier_reads_the_same_upgraded_plan_as_a_dict(monkeypatch):
    monkeypatch.setitem(plan_versions.UPGRADES, 0, upgrade_0_to_1)

    data = plan_data(started(version_0(todays_plan()), plan_version=0))

    assert data["rollback"] == {"drop_indexes": True} and data["version"] == CURRENT
    assert Plan.model_validate(data) == parse_plan(SKELETON)


def test_a_version_without_an_upgrade_is_refused_saying_which_versions_are_read():
    with pytest.raises(PlanVersionError, match="plan version 0 is older than any this golive reads"):
        plan_of(started(version_0(todays_plan()), plan_version=0))


def test_a_plan_version_newer_than_the_code_is_a_clear_error():
    with pytest.raises(PlanVersionError, match="plan version 3 is newer than this golive reads"):
        plan_of(started(todays_plan(), plan_version=3))


def test_upgrades_run_one_version_at_a_time_up_to_the_current(monkeypatch):
    monkeypatch.setattr(plan_versions, "CURRENT", 3)
    monkeypatch.setattr(plan_versions, "UPGRADES", {1: lambda p: {**p, "steps": ["1->2"]},
                                                    2: lambda p: {**p, "steps": [*p["steps"], "2->3"]}})

    assert upgrade_plan({"name": "x"}) == {"version": 3, "name": "x", "steps": ["1->2", "2->3"]}
    assert upgrade_plan({"name": "x", "version": 2, "steps": []}) == {"version": 3, "name": "x", "steps": ["2->3"]}


def test_a_plan_whose_own_version_disagrees_with_run_started_is_refused():
    with pytest.raises(PlanVersionError, match="the plan says version 3 but was stored as version 1"):
        plan_data(started({**todays_plan(), "version": 3}))


def test_a_plan_file_may_state_its_version_and_absent_means_1():
    assert parse_plan(SKELETON).version == 2
    assert "version: 2" in SKELETON and "version:" not in UNVERSIONED
    # the skeleton's analysis says nothing of inconclusive windows: version 1 and 2 read it alike (pause)
    assert parse_plan("version: 1\n" + UNVERSIONED) == parse_plan(UNVERSIONED) == parse_plan(SKELETON)
    assert plan_from_dict(yaml.safe_load(SKELETON)).version == 2


@pytest.mark.parametrize(("stored", "read"), [("ignore", "pause"), (None, "pause"), ("fail", "fail")])
def test_version_1s_inconclusive_ignore_reads_as_pause_and_fail_stays_fail(stored, read):
    # version 1's default (ignore) let a hold whose checks or guard gave no evidence pass with no one told
    old = {**todays_plan(), "analysis": {"interval": 30.0} | ({"inconclusive": stored} if stored else {})}

    assert plan_of(started(old, plan_version=1)).analysis.inconclusive == read
    assert parse_plan("version: 1\n" + yaml.safe_dump({**old, "name": "old"})).analysis.inconclusive == read
    assert old["analysis"].get("inconclusive") == stored  # the stored plan is read, never changed


def test_a_plan_file_of_a_newer_version_names_the_line_and_says_why():
    with pytest.raises(PlanError) as caught:
        parse_plan("version: 7\n" + UNVERSIONED)
    [problem] = caught.value.problems
    assert problem.startswith("version (line 1): plan version 7 is newer than this golive reads (up to 2)"), problem


def test_a_plan_validated_directly_must_be_of_the_current_version():
    # an older dict must go through the upgrades: validating it as today's model would misread it
    with pytest.raises(ValueError, match="version 0 is not the current plan version"):
        Plan.model_validate({**yaml.safe_load(SKELETON), "version": 0})
