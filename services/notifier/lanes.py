"""Delivery lanes: which messages may wait for which.

A lane is one run's messages to one sink at one urgency; it posts them one after another, in the order their
events came, so a run's story reads in order. Lanes run side by side: a hung receiver, or a run's retries, hold
up only their own lane. Alerts (danger and louder: a rollback started, a run rolled back, needs human, a watch
breach) have lanes of their own, so a rollback alert never waits behind its run's start message. How many posts
run at once is bounded per urgency, so a storm of slow posts cannot starve the alerts of a slot either; each post's
own time is bounded by its sink's ``timeout_s`` (delivery.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from golive.shared.plan.notifications import SEVERITY_ORDER

ALERT_FROM = "danger"
POSTS_AT_ONCE = 16  # per urgency


class Lane(NamedTuple):
    run_id: str
    sink: str
    urgency: str  # "alert" or "news"


def lane_of(run_id: str, sink: str, severity: str) -> Lane:
    """The lane a message of ``severity`` for ``run_id`` to ``sink`` waits in."""
    rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
    return Lane(run_id, sink, "alert" if rank >= SEVERITY_ORDER.index(ALERT_FROM) else "news")


class Lanes:
    """Runs ``deliver(job)`` for each job submitted, one at a time per lane, lanes side by side within the bound."""

    def __init__(self, deliver: Callable[[Any], Awaitable[None]], log: Any, posts_at_once: int = POSTS_AT_ONCE) -> None:
        self._deliver = deliver
        self._log = log
        self._waiting: dict[Lane, deque] = {}
        self._workers: dict[Lane, asyncio.Task] = {}
        self._slots = {"alert": asyncio.Semaphore(posts_at_once), "news": asyncio.Semaphore(posts_at_once)}

    def submit(self, lane: Lane, job: Any) -> None:
        """Queue ``job`` at the end of ``lane``; the lane's worker starts if it is idle."""
        self._waiting.setdefault(lane, deque()).append(job)
        if lane not in self._workers:
            self._workers[lane] = asyncio.create_task(self._work(lane), name=f"notifier lane {lane.urgency}")

    async def _work(self, lane: Lane) -> None:
        waiting = self._waiting[lane]
        try:
            while waiting:
                job = waiting.popleft()
                async with self._slots[lane.urgency]:
                    try:
                        await self._deliver(job)
                    except Exception as exc:  # noqa: BLE001 - the job stays unsettled; its event comes back for it
                        self._log.error("notification.lane_error", run_id=lane.run_id, sink=lane.sink,
                                        error=f"{type(exc).__name__}")
        finally:
            # nothing awaits between the last check and here: a job submitted meanwhile found this worker
            # registered and was taken by the loop above; an empty lane leaves no trace (runs come and go)
            self._workers.pop(lane, None)
            if not waiting:
                self._waiting.pop(lane, None)

    async def close(self) -> None:
        """Stop every lane (shutdown): unsettled jobs are taken over once their claims lapse."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
