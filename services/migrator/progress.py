"""A build's progress, read from pg_stat_progress_create_index on a second connection.

``read_progress`` (pure) turns one row into a phase, a per-phase percent and an overall percent; the
overall percent is a weighting of CREATE INDEX CONCURRENTLY's phases (a heuristic: PostgreSQL has no
such number). ``ProgressPoller`` polls the row for the build's backend pid at least once a second and
reports what changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import psycopg

from golive.services.migrator.query_text import MAX_READ_CHARS, shown_query

# (start, end) of each phase on the overall 0-100 scale, in the order a concurrent build goes through them
PHASE_SPAN: dict[str, tuple[float, float]] = {
    "initializing": (0.0, 1.0),
    "waiting for writers before build": (1.0, 5.0),
    "building index: scanning table": (5.0, 45.0),
    "building index: sorting live tuples": (45.0, 50.0),
    "building index: loading tuples in tree": (50.0, 60.0),
    "building index": (5.0, 60.0),
    "waiting for writers before validation": (60.0, 65.0),
    "index validation: scanning index": (65.0, 75.0),
    "index validation: sorting tuples": (75.0, 80.0),
    "index validation: scanning table": (80.0, 95.0),
    "waiting for old snapshots": (95.0, 98.0),
    "waiting for readers before marking dead": (98.0, 99.0),
    "waiting for readers before dropping": (99.0, 100.0),
}
WAITING_PHASES = {p for p in PHASE_SPAN if p.startswith("waiting")}

_PROGRESS = """
SELECT p.phase, p.lockers_total, p.lockers_done, p.current_locker_pid,
       p.blocks_total, p.blocks_done, p.tuples_total, p.tuples_done,
       COALESCE(NULLIF(p.current_locker_pid, 0), (pg_blocking_pids(p.pid))[1]) AS blocker
FROM pg_stat_progress_create_index p WHERE p.pid = %s
"""
_BLOCKED = "SELECT (pg_blocking_pids(%s))[1]"
_QUERY_OF = "SELECT left(query, %s) FROM pg_stat_activity WHERE pid = %s"


@dataclass(frozen=True)
class Progress:
    phase: str
    phase_percent: float | None
    overall_percent: float | None
    lockers_total: int = 0
    lockers_done: int = 0
    blocking_pid: int | None = None
    blocking_query: str | None = None

    @property
    def waiting(self) -> bool:
        return self.blocking_pid is not None

    def key(self) -> tuple:
        """What makes a poll worth reporting: a new phase, a new whole percent, a new blocker."""
        pct = None if self.phase_percent is None else int(self.phase_percent)
        return self.phase, pct, self.lockers_done, self.lockers_total, self.blocking_pid


def phase_percent(phase: str, blocks_total: int, blocks_done: int, tuples_total: int, tuples_done: int,
                  lockers_total: int = 0, lockers_done: int = 0) -> float | None:
    """Percent of the current phase, from the counter that phase advances: blocks for table scans, tuples
    for loading and validation, lockers for the waits; none while sorting (PostgreSQL reports no counter,
    and the previous phase's counters may still be set)."""
    if "sorting live tuples" in phase:
        return None
    if phase.startswith("waiting"):
        counters = [(lockers_total, lockers_done)]
    elif "scanning table" in phase:
        counters = [(blocks_total, blocks_done)]
    elif any(p in phase for p in ("loading tuples", "scanning index", "sorting tuples")):
        counters = [(tuples_total, tuples_done)]
    else:
        counters = [(blocks_total, blocks_done), (tuples_total, tuples_done)]
    for total, done in counters:
        if total and total > 0:
            return round(min(100.0, 100.0 * done / total), 1)
    return None


def overall_percent(phase: str, within: float | None) -> float | None:
    """Overall percent of a concurrent build from its phase and the percent within that phase."""
    span = PHASE_SPAN.get(phase)
    if span is None:
        return None
    start, end = span
    return round(start + (end - start) * (within or 0.0) / 100.0, 1)


def read_progress(row: tuple, blocking_query: str | None = None) -> Progress:
    """One pg_stat_progress_create_index row (as selected by _PROGRESS) as Progress."""
    phase, lockers_total, lockers_done, _locker, blocks_total, blocks_done, tuples_total, tuples_done, blocker = row
    within = phase_percent(phase, blocks_total or 0, blocks_done or 0, tuples_total or 0, tuples_done or 0,
                           lockers_total or 0, lockers_done or 0)
    return Progress(
        phase=phase, phase_percent=within, overall_percent=overall_percent(phase, within),
        lockers_total=lockers_total or 0, lockers_done=lockers_done or 0,
        blocking_pid=blocker or None, blocking_query=blocking_query,
    )


async def poll_once(conn: psycopg.AsyncConnection, pid: int) -> Progress | None:
    """The build's progress now, or None when the backend builds nothing (any more).

    A statement that is not an index build (VACUUM, ANALYZE) or one that waits for a lock before its
    build starts has no row: then only a blocker, if any, is reported (phase "waiting for lock")."""
    row = await (await conn.execute(_PROGRESS, (pid,))).fetchone()
    if row is None:
        blocked = await (await conn.execute(_BLOCKED, (pid,))).fetchone()
        if not blocked or not blocked[0]:
            return None
        query = await _query_of(conn, blocked[0])
        return Progress("waiting for lock", None, None, blocking_pid=blocked[0], blocking_query=query)
    blocker = row[-1]
    return read_progress(row, await _query_of(conn, blocker) if blocker else None)


async def _query_of(conn: psycopg.AsyncConnection, pid: int) -> str | None:
    """The blocker's query as it may be shown: normalised, no literal (query_text.py)."""
    row = await (await conn.execute(_QUERY_OF, (MAX_READ_CHARS, pid))).fetchone()
    return shown_query(row[0]) if row and row[0] is not None else None


Report = Callable[[Progress, float], Awaitable[None]]


async def poll_until_cancelled(url: str, pid: int, interval_s: float, report: Report) -> None:
    """Poll ``pid``'s progress every ``interval_s`` on a connection of its own (autocommit, so it holds
    no snapshot the build would wait for) and ``report`` each change with the seconds since start.

    The first poll comes after one interval: a statement done sooner is reported by its result alone."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10,
                                                      application_name="golive-migrator-progress") as conn:
        last, highest = None, 0.0
        while True:
            await asyncio.sleep(interval_s)
            progress = await poll_once(conn, pid)
            if progress is not None and progress.key() != last:
                last = progress.key()
                if progress.overall_percent is not None:  # the overall figure is an estimate: never show it going back
                    highest = max(highest, progress.overall_percent)
                    progress = replace(progress, overall_percent=highest)
                await report(progress, time.perf_counter() - started)
