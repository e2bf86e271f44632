"""`golive watch RUN`: when a run's post-deploy watch checks next, said against the clock.

The watch's events say when each next check is due (watch_check_completed's next_check_at); the check itself is a
command, not an event, so a reader of the stream cannot tell a check in flight from one nobody sent (no coordinator
holds the watch). Once that time has passed, the check is overdue and said so, with how long ago it was due; a
"next check" is always in the future.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from golive.services.coordinator.post_deploy import WatchState


def next_check_line(watch: WatchState, now: datetime) -> Text | None:
    """``next check (2 of 24): 2026-12-07 17:10:00 (in 59m)``, or once that time passed ``check 2 of 24 overdue: due
    at 2026-12-07 16:00:00 (50m ago), no result yet``; None when the watch ended or has no check left."""
    if watch.ended or watch.next_check_at is None or watch.checks_done >= watch.checks_planned:
        return None
    n, planned, due = watch.checks_done + 1, watch.checks_planned, watch.next_check_at
    if due > now:
        return Text(f"next check ({n} of {planned}): {due:%Y-%m-%d %H:%M:%S} (in {_span((due - now).total_seconds())})")
    return Text(f"check {n} of {planned} overdue: due at {due:%Y-%m-%d %H:%M:%S} ({_span((now - due).total_seconds())}"
                " ago), no result yet: a coordinator holding the watch sends it (is one running?)", style="yellow")


def _span(seconds: float) -> str:
    """``45s``, ``59m``, ``3h 20m``, ``2d 4h``: how far off, as a person says it."""
    seconds = int(seconds)
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if seconds >= size:
            rest = (seconds % size) // small_size
            return f"{seconds // size}{unit}" + (f" {rest}{smaller}" if rest else "")
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"
