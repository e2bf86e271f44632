"""Maintenance windows: when a go-live may start, and when it must be done (pure functions of time).

``start_refusal`` is the one rule of the start: the CLI asks it before it sends a start (to say so at once) and
the coordinator asks it again as the start arrives (a start sent around the CLI is held to it too).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from golive.shared.plan.window import MaintenanceWindow

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


def start_window(maintenance: MaintenanceWindow | None, moment: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the plan's maintenance window that a run starting at ``moment`` starts in, if any."""
    if maintenance is None:
        return None
    return window_containing(moment, list(maintenance.days), maintenance.start, maintenance.end, maintenance.timezone)


def start_refusal(maintenance: MaintenanceWindow | None, moment: datetime, forced: bool) -> str | None:
    """Why a run may not start at ``moment``: outside the plan's maintenance window, unless ``forced``
    (``--force-window``, recorded on the start). None: it may start."""
    if maintenance is None or forced or start_window(maintenance, moment) is not None:
        return None
    described = describe_window(list(maintenance.days), maintenance.start, maintenance.end, maintenance.timezone)
    return f"outside the maintenance window ({described}): start it inside the window, or force it with --force-window"
