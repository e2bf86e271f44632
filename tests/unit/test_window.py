"""Maintenance windows as the runbook writes them: Sunday 02:00-04:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, time

from services.coordinator.window import window_containing

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
