"""Rehearsal: the runbook plan on a compressed clock keeps every phase and threshold, and sane floors."""

from __future__ import annotations

import pytest

from golive.plans import RUNBOOK
from golive.plans.rehearsal import MIN_STEP_TIMEOUT_S, MIN_WINDOW_S, compress
from golive.shared.plan import load_plan


def test_the_runbook_canary_of_an_hour_takes_30_seconds_at_the_demo_scale():
    plan = compress(load_plan(RUNBOOK), 120)
    assert [s.hold for s in plan.canary.stages] == [15.0, 7.5, 7.5]
    assert plan.window.rollback == 5.0
    assert plan.analysis.interval == 2.0  # 30 s / 120 = 0.25 s: the floor
    assert plan.post_deploy.period == 7 * 86400 / 120


def test_compression_keeps_thresholds_phases_and_messages():
    original = load_plan(RUNBOOK)
    plan = compress(original, 120)
    assert [s.checks for s in plan.canary.stages][0][1].thresholds == original.canary.stages[0].checks[1].thresholds
    assert plan.guards.limits() == original.guards.limits() and plan.notifications == original.notifications
    assert plan.migrations == original.migrations and len(plan.preflight) == len(original.preflight)
    assert plan.window.maintenance == original.window.maintenance  # times of day are not durations


def test_windows_durations_and_timeouts_keep_their_floors():
    plan = compress(load_plan(RUNBOOK), 10_000)
    assert plan.analysis.interval == MIN_WINDOW_S
    assert all(c.duration == MIN_WINDOW_S for c in plan.smoke)
    assert all(s.hold == MIN_WINDOW_S for s in plan.canary.stages)
    assert plan.timeouts.step == MIN_STEP_TIMEOUT_S and plan.timeouts.approval == 60.0
    assert plan.retries == load_plan(RUNBOOK).retries


def test_scale_one_is_the_plan_itself_and_below_one_is_refused():
    plan = load_plan(RUNBOOK)
    assert compress(plan, 1) is plan
    with pytest.raises(ValueError, match="never stretches"):
        compress(plan, 0.5)
