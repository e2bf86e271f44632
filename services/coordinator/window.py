"""Maintenance windows: when a go-live may start, and when it must be done (pure functions of time)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window_containing(moment: datetime, days: list[str], start: time, end: time, timezone: str) -> tuple[datetime, datetime] | None:
    """The (start, end) of the maintenance window ``moment`` falls in, or None when it falls in none.

    A window opens on each listed day at ``start`` local time and closes at ``end``; an ``end`` at or before
    ``start`` closes the next day (a window over midnight). Times are compared in the window's time zone.
    """
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    for back in (0, 1):  # a window over midnight may have opened the day before
        day = (local - timedelta(days=back)).date()
        if DAYS[day.weekday()] not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day, end, tzinfo=zone)
        if closes <= opens:
            closes += timedelta(days=1)
        if opens <= local < closes:
            return opens, closes
    return None


def describe_window(days: list[str], start: time, end: time, timezone: str) -> str:
    """``Sun 02:00-04:00 UTC``"""
    names = ",".join(d.capitalize() for d in days)
    return f"{names} {start:%H:%M}-{end:%H:%M} {timezone}"
