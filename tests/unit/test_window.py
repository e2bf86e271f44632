"""Maintenance windows as the runbook writes them: Sunday 02:00-04:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, time

from golive.services.coordinator.window import start_refusal, start_window, window_containing
from golive.shared.plan.window import MaintenanceWindow

SUNDAY = ["sun"]


def test_a_moment_inside_the_window_gets_its_start_and_end():
    opened = window_containing(datetime(2026, 11, 29, 2, 30, tzinfo=UTC), SUNDAY, time(2), time(4), "UTC")
    assert opened == (datetime(2026, 11, 29, 2, 0, tzinfo=UTC), datetime(2026, 11, 29, 4, 0, tzinfo=UTC))


def test_the_end_is_exclusive_and_other_days_are_outside():
    assert window_containing(datetime(2026, 11, 29, 4, 0, tzinfo=UTC), SUNDAY, time(2), time(4), "UTC") is None
    assert window_containing(datetime(2026, 11, 28, 2, 30, tzinfo=UTC), SUNDAY, time(2), time(4), "UTC") is None


def test_a_window_over_midnight_belongs_to_the_day_it_opened():
    # Saturday 23:00 - Sunday 01:00: Sunday 00:30 is inside Saturday's window
    opened = window_containing(datetime(2026, 11, 29, 0, 30, tzinfo=UTC), ["sat"], time(23), time(1), "UTC")
    assert opened is not None and opened[0].day == 28 and opened[1].day == 29


def test_local_time_of_the_window_zone_decides():
    # 02:30 in Helsinki (UTC+2 in November) is 00:30 UTC
    moment = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    assert window_containing(moment, SUNDAY, time(2), time(4), "Europe/Helsinki") is not None
    assert window_containing(moment, SUNDAY, time(2), time(4), "UTC") is None


def test_a_run_starts_inside_its_window_or_when_forced_and_is_refused_outside_in_one_wording():
    runbook = MaintenanceWindow(days=SUNDAY, start=time(2), end=time(4))
    inside, outside = datetime(2026, 11, 29, 2, 30, tzinfo=UTC), datetime(2026, 11, 28, 2, 30, tzinfo=UTC)

    assert start_refusal(runbook, inside, forced=False) is None
    assert start_window(runbook, inside) == (datetime(2026, 11, 29, 2, 0, tzinfo=UTC), datetime(2026, 11, 29, 4, 0, tzinfo=UTC))
    assert start_refusal(runbook, outside, forced=False) == (
        "outside the maintenance window (Sun 02:00-04:00 UTC): start it inside the window, or force it with --force-window")
    assert start_refusal(runbook, outside, forced=True) is None and start_window(runbook, outside) is None
    assert start_refusal(None, outside, forced=False) is None  # a plan without a window starts any time
