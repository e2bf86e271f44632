"""The prober's own scheduling lag: how late its event loop runs what is due, watched all through a run.

A busy machine or a slow callback delays everything on the prober's loop: requests go out late and answers are
read late, and since latency counts from the due time (open loop) the target would be blamed for the prober's
delay (two healthy stage 1s failed under CPU load). A timer callback every ``EVERY_S`` measures how late it
runs. The worst lateness of each window is in its numbers (``prober_lag_ms``); a lateness beyond
``golive.shared.judge.PROBER_LAG_TOLERANCE_MS`` is a stall of the prober, and a request in flight across a stall is not
counted against the target (``overloaded`` says how many were not), so a hold's totals rest only on requests the
prober could time, and the window with the stall is judged inconclusive ("prober overloaded: lag X ms").

A plain timer callback, not a task: the loop runs it as soon as it finds it due, before the tasks whose
answers came in during the stall get to record them, so no request of a stall is counted before the stall is
known.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from golive.shared.judge import PROBER_LAG_TOLERANCE_MS

EVERY_S = 0.02


class LagListener(Protocol):
    def note_lag(self, lag_ms: float) -> None:
        """The loop ran a callback ``lag_ms`` late."""


class LoopLag:
    """Watches the running loop's lateness from ``start()`` to ``stop()``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, every_s: float = EVERY_S,
                 tolerance_ms: float = PROBER_LAG_TOLERANCE_MS) -> None:
        self._clock, self._every, self._tolerance = clock, every_s, tolerance_ms
        self._listeners: list[LagListener] = []
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self.last_stall_end = float("-inf")
        self.last_stall_ms = 0.0
        self.worst_ms = 0.0

    def watch(self, listener: LagListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def stalled_since(self, start: float) -> bool:
        """Whether the prober stalled after ``start`` (a request started then and finished now was in flight across it)."""
        return self.last_stall_end > start

    def _schedule(self) -> None:
        self._due = self._clock() + self._every
        self._handle = asyncio.get_running_loop().call_later(self._every, self._tick)

    def _tick(self) -> None:
        now = self._clock()
        lag_ms = max(0.0, (now - self._due) * 1000.0)
        self.worst_ms = max(self.worst_ms, lag_ms)
        if lag_ms > self._tolerance:
            self.last_stall_end, self.last_stall_ms = now, lag_ms
        for listener in self._listeners:
            listener.note_lag(lag_ms)
        self._schedule()
