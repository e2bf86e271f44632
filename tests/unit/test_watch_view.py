"""`golive watch RUN`'s next check (golive/views/watch.py): always in the future; once its time passed, the check is
said to be overdue with how long ago it was due (issue 15, finding 4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import yaml

from golive.services.coordinator.post_deploy import WatchState
from golive.shared.plan import parse_plan
from golive.views.watch import next_check_line
from tests.builders import T0, skeleton_dict


def watched(plan: dict) -> None:
    plan["post_deploy"] = {"period": "1d", "health_every": "10m", "summary_every": "1h",
                           "checks": [{"probe": "stripe_recent", "duration": "1s"}]}


WATCH = WatchState("run-1", parse_plan(yaml.safe_dump(skeleton_dict(edit=watched))), "dpl_new", "dpl_old",
                   started_at=T0, checks_done=1, next_check_at=T0 + timedelta(minutes=10))


def said(watch: WatchState, after: timedelta) -> str:
    line = next_check_line(watch, T0 + after)
    return line.plain if line is not None else ""


def test_a_check_due_later_is_the_next_check_with_the_time_left():
    assert said(WATCH, timedelta(minutes=1)) == "next check (2 of 144): 2026-01-04 02:10:00 (in 9m)"


def test_a_check_whose_time_passed_is_overdue_never_a_next_check_in_the_past():
    line = said(WATCH, timedelta(hours=3, minutes=30))

    assert "next check" not in line
    assert line.startswith("check 2 of 144 overdue: due at 2026-01-04 02:10:00 (3h 20m ago), no result yet")
    assert said(WATCH, timedelta(minutes=10)).startswith("check 2 of 144 overdue")  # due now: not in the future


def test_a_watch_that_ended_or_has_no_check_left_has_no_next_check():
    assert said(replace(WATCH, ended=True), timedelta(minutes=1)) == ""
    assert said(replace(WATCH, checks_done=144), timedelta(minutes=1)) == ""
