"""The load model: how requests are sent to a target, and when their latency starts.

- Open loop (``rate``): request i is due at t0 + i/rate. ``concurrency`` workers take the next due
  request in turn, wait until it is due if they are early, and measure its latency from the due time, not
  from when they got round to sending it. A one-second stall therefore shows as a second of latency for
  everything due during it (no coordinated omission), and the schedule does not slow down to suit the
  target. Requests still not sent when the run ends are counted as ``unsent``.
- Closed loop: ``concurrency`` workers each send when their previous answer came; latency from the send.
  A stall shows as fewer requests (a lower achieved rate), not as latency.

Requests due (open) or sent (closed) during the warm-up are not counted. The run ends at its end time or
when ``stop`` is set, whichever is first; requests in flight at a stop are abandoned, not counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.prober.kinds import CONNECTION, DNS, OTHER, ProbeFailure, ProbeTarget
from services.prober.stats import LatencyWindow, Reservoir

# after a connection failure a closed-loop worker pauses, so a down target is not hammered in a hot loop
CLOSED_LOOP_BACKOFF_S = 0.1
# a request due before the end is still sent if a worker gets to it this soon after the end (it belongs to
# the run; dropping it would favour the target); after that, what is left counts as unsent
END_GRACE_S = 0.5


@dataclass
class Recorder:
    """Where one target's results go: the current window (swapped by ``rotate``) and the run's total."""

    counted_from: float
    window: LatencyWindow
    total: LatencyWindow
    unsent: int = 0

    @classmethod
    def starting(cls, counted_from: float, reservoir_seed: int | None = None) -> Recorder:
        return cls(counted_from, LatencyWindow(), LatencyWindow(reservoir=Reservoir(seed=reservoir_seed)))

    def ok(self, start: float, seconds: float, gauges: dict[str, float] | None) -> None:
        if start < self.counted_from:
            return
        self.window.record(seconds)
        self.total.record(seconds)
        if gauges:
            self.window.record_gauges(gauges)
            self.total.record_gauges(gauges)

    def error(self, start: float, error_class: str) -> None:
        if start < self.counted_from:
            return
        self.window.record_error(error_class)
        self.total.record_error(error_class)

    def rotate(self) -> LatencyWindow:
        """Close the current window and start the next; returns the closed one."""
        closed, self.window = self.window, LatencyWindow()
        return closed


async def run_load(
    target: ProbeTarget, recorder: Recorder, *, concurrency: int, rate: float | None, t0: float, end: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Drive ``target`` from ``t0`` to ``end`` (clock seconds): open loop at ``rate``, else closed loop.
    Cancel the task running this to stop early."""
    if rate is None:
        await asyncio.gather(*(_closed_worker(target, recorder, w, t0, end, clock) for w in range(concurrency)))
        return
    schedule = _Schedule(t0, rate, end, concurrency, asyncio.get_running_loop(), clock)
    ticker = threading.Thread(target=schedule.tick, name="golive-prober-schedule", daemon=True)
    ticker.start()
    try:
        await asyncio.gather(*(_open_worker(target, recorder, w, schedule, clock) for w in range(concurrency)))
    finally:  # also on a stop: what was due by now and not sent is unsent
        schedule.stopped.set()
        recorder.unsent += schedule.unsent(min(end, clock()))


class _Schedule:
    """Open-loop due times, released by a thread of their own and taken by the workers in turn.

    The releasing thread sleeps with the OS's microsecond timer: the event loop's timers wake up to a
    millisecond late (epoll's resolution), which would add a millisecond to every latency measured from
    the due time and make a fast query look slow."""

    def __init__(self, t0: float, rate: float, end: float, workers: int, loop: asyncio.AbstractEventLoop,
                 clock: Callable[[], float]) -> None:
        self.t0, self.rate, self.end, self.workers, self.loop, self.clock = t0, rate, end, workers, loop, clock
        self.due: asyncio.Queue[float | None] = asyncio.Queue()
        self.stopped = threading.Event()
        self.taken = 0

    def tick(self) -> None:
        i = 0
        try:
            while not self.stopped.is_set():
                due = self.t0 + i / self.rate
                if due >= self.end:
                    break
                wait = due - self.clock()
                if wait > 0 and self.stopped.wait(wait):
                    return
                self.loop.call_soon_threadsafe(self.due.put_nowait, due)
                i += 1
            for _ in range(self.workers):
                self.loop.call_soon_threadsafe(self.due.put_nowait, None)
        except RuntimeError:  # the loop closed under us (the run was abandoned): nothing is waiting
            return

    def unsent(self, until: float) -> int:
        """Requests due before ``until`` that no worker got to send (the target was too slow to keep up)."""
        if until <= self.t0:
            return 0
        due_in_run = int((until - self.t0) * self.rate - 1e-9) + 1
        return max(0, due_in_run - self.taken)


async def _open_worker(target: ProbeTarget, recorder: Recorder, worker: int, schedule: _Schedule, clock) -> None:
    while True:
        due = await schedule.due.get()
        if due is None or clock() >= schedule.end + END_GRACE_S:
            return  # whatever is still due stays unsent: counted by the schedule
        schedule.taken += 1
        try:
            gauges = await target.request(worker)
        except ProbeFailure as failure:
            recorder.error(due, failure.error_class)
            continue
        except Exception:  # a failure no kind foresaw: counted, never the end of the probe
            recorder.error(due, OTHER)
            continue
        recorder.ok(due, clock() - due, gauges)


async def _closed_worker(target: ProbeTarget, recorder: Recorder, worker: int, t0: float, end: float, clock) -> None:
    now = clock()
    if t0 > now:
        await asyncio.sleep(t0 - now)
    while (start := clock()) < end:
        try:
            gauges = await target.request(worker)
        except ProbeFailure as failure:
            recorder.error(start, failure.error_class)
            if failure.error_class in (CONNECTION, DNS):
                await asyncio.sleep(CLOSED_LOOP_BACKOFF_S)
            continue
        except Exception:  # a failure no kind foresaw: counted, never the end of the probe
            recorder.error(start, OTHER)
            await asyncio.sleep(CLOSED_LOOP_BACKOFF_S)
            continue
        recorder.ok(start, clock() - start, gauges)
