"""Plan versions: every plan ever stored stays readable.

A plan travels in ``run_started``, and the event stream keeps runs for 400 days: ``golive status``, ``report``,
``resume`` and a restarted coordinator read those plans back with today's code. So a plan carries the version of
its format (``version:`` in a plan file, absent: 1; ``plan_version`` next to the plan in ``run_started``,
absent: 1), and a plan of an older version is read by upgrading it one version at a time through the explicit
functions of ``UPGRADES``, then validated as a plan of the current version.

The rule for changing the plan model (shared/plan/):

- Adding an optional field (with a default that means what plans without it meant) is compatible: same version.
- Renaming or removing a field, or changing what a value means, is a new version: raise ``CURRENT``, register
  ``UPGRADES[old] = <function turning an old plan's dict into the new one>``, and test it against the recorded
  stream (tests/recorded/). Never edit a registered upgrade: stored runs were written with it in mind.

The upgrades work on plain dicts (as JSON holds them), before the plan is validated: every service reads a stored
plan through ``golive.shared.plan.plan_of``, which upgrades it here and validates it into a Plan.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plan model (shared/plan/) reads through here and events carry plans: no import circle
    from golive.shared.events import RunStarted

CURRENT = 2  # the version of the plan model in shared/plan/
FIRST = 1  # the version of every plan written before plans had versions

PlanData = dict[str, Any]


def inconclusive_ignore_to_pause(plan: PlanData) -> PlanData:
    """Version 1 -> 2: ``analysis.inconclusive: ignore`` (the version 1 default) is gone, since a hold whose
    checks or guard gave no evidence passed with no one told. It reads as ``pause`` (the version 2 default): the
    run waits for a person at such a hold, which never fails a healthy canary and never lets an unread one pass.
    ``fail`` stays ``fail``."""
    analysis = plan.get("analysis")
    if isinstance(analysis, dict) and analysis.get("inconclusive", "ignore") == "ignore":
        analysis["inconclusive"] = "pause"
    return plan


# version n -> the function that turns a version-n plan (a dict, without its "version" key) into a version n+1 one
UPGRADES: dict[int, Callable[[PlanData], PlanData]] = {1: inconclusive_ignore_to_pause}


class PlanVersionError(ValueError):
    """A plan this golive cannot read: a version newer than it knows, or one no upgrade leads from."""


def upgrade_plan(data: Mapping[str, Any], version: int | None = None) -> PlanData:
    """The plan ``data`` upgraded to the current version, with ``"version": CURRENT``.

    ``version``: the version ``data`` was written in; None: its own ``version`` key (absent: FIRST). When both
    are given they must agree. ``data`` itself is never changed. PlanVersionError when it cannot be read."""
    own = data.get("version")
    if version is None:
        version = FIRST if own is None else own
    elif own is not None and own != version:
        raise PlanVersionError(f"the plan says version {own!r} but was stored as version {version}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PlanVersionError(f"plan version {version!r} is not a whole number (the current version is {CURRENT})")
    if version > CURRENT:
        raise PlanVersionError(f"plan version {version} is newer than this golive reads (up to {CURRENT}): "
                               "a newer golive wrote it; read it with that version or later")
    plan = copy.deepcopy({k: v for k, v in data.items() if k != "version"})
    while version < CURRENT:
        upgrade = UPGRADES.get(version)
        if upgrade is None:
            oldest = min([*UPGRADES, CURRENT])
            raise PlanVersionError(f"plan version {version} is older than any this golive reads "
                                   f"(versions {oldest} to {CURRENT})")
        plan = upgrade(plan)
        version += 1
    return {"version": CURRENT, **plan}


def plan_data(started: RunStarted) -> PlanData:
    """The plan a run started with, as a dict of the current version: the one way to read ``run_started.plan``
    (``golive.shared.plan.plan_of`` validates it into a Plan)."""
    return upgrade_plan(started.plan, started.plan_version)
