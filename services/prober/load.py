"""The load model: how requests are sent to a target, and when their latency starts.

- Open loop (``rate``): request i is due at t0 + i/rate. ``concurrency`` workers take the next due
  request in turn, wait until it is due if they are early, and measure its latency from the due time, not
  from when they got round to sending it. A one-second stall therefore shows as a second of latency for
  everything due during it (no coordinated omission), and the schedule does not slow down to suit the
  target. A request a worker got to more than LATE_AFTER_S after its due time because every worker was busy
  with slower answers is counted ``late`` (in its window and the total); requests still not sent when the run
  ends are failures of class ``unsent``, in the last window and the total: a slow target shows, never hides.
- Closed loop: ``concurrency`` workers each send when their previous answer came; latency from the send.
  A stall shows as fewer requests (a lower achieved rate), not as latency.

Requests due (open) or sent (closed) during the warm-up are not counted. The run ends at its end time or
when ``stop`` is set, whichever is first; requests in flight at a stop are abandoned, not counted.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from golive.services.prober.kinds import CONNECTION, DNS, OTHER, Gauges, ProbeFailure, ProbeTarget
from golive.services.prober.loop_lag import LoopLag
from golive.services.prober.stats import UNSENT, LatencyWindow, Reservoir

# after a connection failure a closed-loop worker pauses, so a down target is not hammered in a hot loop
CLOSED_LOOP_BACKOFF_S = 0.1
# a request due before the end is still sent if a worker gets to it this soon after the end (it belongs to
# the run; dropping it would favour the target); after that, what is left counts as unsent
END_GRACE_S = 0.5
PARK_FALLBACK_S = 0.005  # how late past its due time a parked worker wakes when the thread does not wake it
# a request a busy worker got to this long after its due time is late: the workers are not keeping up with the rate
LATE_AFTER_S = 0.01


@dataclass
class Recorder:
    """Where one target's results go: the current window (swapped by ``rotate``) and the run's total."""

    counted_from: float
    window: LatencyWindow
    total: LatencyWindow
    unsent: int = 0
    # the prober's own lag (loop_lag.py): a request in flight across a stall of the prober is not counted
    loop_lag: LoopLag | None = None
    # a target that reads whole windows instead of sending requests (a prometheus probe): fills the current window
    # with the last ``seconds`` before it is closed (run.py)
    source: Callable[[float], Awaitable[None]] | None = None
    # told of every request counted, as it completes: (due or send time, the target's own time to answer in ms, from
    # the send, or None for a failure, the deployment that answered where the answer named it); the sequential judge
    # of canary against stable (run.py) listens here: it compares the targets, and the prober's own backlog (a request
    # sent late) is no part of a target's answer
    listener: Callable[[float, float | None, str | None], None] | None = None

    @classmethod
    def starting(cls, counted_from: float, reservoir_seed: int | None = None, loop_lag: LoopLag | None = None) -> Recorder:
        recorder = cls(counted_from, LatencyWindow(), LatencyWindow(reservoir=Reservoir(seed=reservoir_seed)),
                       loop_lag=loop_lag)
        if loop_lag is not None:
            loop_lag.watch(recorder)
        return recorder

    def ok(self, start: float, seconds: float, gauges: dict[str, float] | None, sent: float | None = None,
           late: bool = False) -> None:
        if not self._counted(start, gauges, late):
            return
        self.window.record(seconds)
        self.total.record(seconds)
        if self.listener is not None:
            late = max(0.0, sent - start) if sent is not None else 0.0
            self.listener(start, max(0.0, seconds - late) * 1000.0, getattr(gauges, "deployment", None))

    def error(self, start: float, error_class: str, gauges: dict[str, float] | None = None,
              deployment: str | None = None, late: bool = False) -> None:
        if not self._counted(start, gauges, late):
            return
        self.window.record_error(error_class)
        self.total.record_error(error_class)
        if self.listener is not None:
            self.listener(start, None, deployment)

    def _counted(self, start: float, gauges: dict[str, float] | None, late: bool) -> bool:
        """Whether an answer to the request due (or sent) at ``start`` counts, an answer or a failure alike: not one
        of the warm-up, nor one across a stall of the prober's own (left out, counted as such); its gauges are kept
        either way after the warm-up (read by the server, whenever the answer is read); a late one counts as late."""
        if start < self.counted_from:
            return False
        self._gauges(gauges)
        if self._overloaded(start):
            return False
        if late:
            self.window.late += 1
            self.total.late += 1
        return True

    def count_unsent(self, requests: int) -> None:
        """``requests`` due that no worker sent: failures of class ``unsent`` in the current window and the total."""
        if requests > 0:
            self.unsent += requests
            self.window.errors[UNSENT] += requests
            self.total.errors[UNSENT] += requests

    def note_lag(self, lag_ms: float) -> None:
        """The prober's loop ran ``lag_ms`` late (loop_lag.py): the current window's worst is kept."""
        self.window.prober_lag_ms = max(self.window.prober_lag_ms, lag_ms)

    def not_counted(self, requests: int) -> None:
        """``requests`` the prober could not time (in flight or unsent across a stall of its own) are left out of its
        numbers; the window they would have been counted in shows the stall (it may have begun in the one before)."""
        if requests and self.loop_lag is not None:
            self.note_lag(self.loop_lag.last_stall_ms)
        self.window.overloaded += requests
        self.total.overloaded += requests

    def _overloaded(self, start: float) -> bool:
        if self.loop_lag is None or not self.loop_lag.stalled_since(start):
            return False
        self.not_counted(1)
        return True

    def _gauges(self, gauges: dict[str, float] | None) -> None:
        if gauges is None:
            return
        unread = gauges.unread if isinstance(gauges, Gauges) else {}
        for window in (self.window, self.total):
            window.record_gauges(gauges, unread)

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
        await _workers(_closed_worker(target, recorder, w, t0, end, clock) for w in range(concurrency))
        return
    schedule = _Schedule(t0, rate, end, asyncio.get_running_loop(), clock)
    ticker = threading.Thread(target=schedule.tick, name="golive-prober-schedule", daemon=True)
    ticker.start()
    try:
        await _workers(_open_worker(target, recorder, w, schedule, clock) for w in range(concurrency))
    finally:  # also on a stop: what was due by now and not sent is unsent
        schedule.stop()
        until = min(end, clock())
        unsent = schedule.unsent(until)
        if recorder.loop_lag is not None:  # those due before a stall of the prober ended: its backlog, not the target's
            backlog = min(unsent, schedule.unsent(min(until, recorder.loop_lag.last_stall_end)))
            recorder.not_counted(backlog)
            unsent -= backlog
        recorder.count_unsent(unsent)


async def _workers(workers: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the workers together until all end; stopped (cancelled) or failed, this returns or raises only once every
    one of them has ended. A gather alone would not wait: cancelled, it ends at once while its workers still end
    their requests (psycopg asks the server to cancel a query), and the target would be closed under them. Their
    ends are bounded (a request's cancel by psycopg's own timeouts), so waiting for them, even through another
    cancel, ends."""
    tasks = [asyncio.create_task(worker) for worker in workers]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        cancelled_again = False
        while not all(task.done() for task in tasks):
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:  # stopped again while they end (a hold's cut): wait for them the same
                cancelled_again = True
        if cancelled_again:
            raise asyncio.CancelledError


class _Schedule:
    """Open-loop due times: request i is due at t0 + i/rate, and a free worker claims the next one.

    A worker that finishes after its next request fell due claims it at once: when the target keeps the
    workers busy (a high rate), requests go out without any hand-over. Only a worker with nothing due
    parks, and a thread of its own wakes it at the next due time: that thread sleeps with the OS's
    microsecond timer, where the event loop's timers wake up to a millisecond late (epoll's resolution),
    which would add a millisecond to every latency measured from the due time and make a fast query look
    slow. While no worker is parked the thread sleeps, costing the loop nothing."""

    def __init__(self, t0: float, rate: float, end: float, loop: asyncio.AbstractEventLoop,
                 clock: Callable[[], float]) -> None:
        self.t0, self.rate, self.end, self.loop, self.clock = t0, rate, end, loop, clock
        self.taken = 0
        self.parked: collections.deque[asyncio.Future] = collections.deque()
        self.someone_parked = threading.Event()  # set by the loop, waited on by the thread
        self.stopped = threading.Event()

    def due(self, i: int) -> float:
        return self.t0 + i / self.rate

    def claim(self, now: float) -> float | None:
        """The next due time if it has come (the caller sends it), else None."""
        due = self.due(self.taken)
        if due > now or due >= self.end:
            return None
        self.taken += 1
        return due

    @property
    def exhausted(self) -> bool:
        return self.due(self.taken) >= self.end

    async def park(self) -> None:
        """Wait until the thread says the next request is due (or the run is over)."""
        woken = self.loop.create_future()
        self.parked.append(woken)
        self.someone_parked.set()
        # The thread wakes us at the due time, to the microsecond. The loop's own timer is the fallback: a
        # wake-up that never comes (a run seen to hang at its end once) then costs a few ms of precision,
        # never the run.
        fallback = max(0.0, self.due(self.taken) - self.clock()) + PARK_FALLBACK_S
        await asyncio.wait([woken], timeout=fallback)
        if not woken.done():
            woken.cancel()  # no longer parked: _wake_one skips it

    def stop(self) -> None:
        self.stopped.set()
        self.someone_parked.set()  # the thread may be waiting for a parked worker

    def tick(self) -> None:
        i = 0
        try:
            while not self.stopped.is_set():
                self.someone_parked.wait()
                i = max(i, self.taken)  # what busy workers claimed themselves needs no wake-up
                due = self.due(i)
                if due >= self.end:
                    break
                wait = due - self.clock()
                if wait > 0 and self.stopped.wait(wait):
                    return
                self.loop.call_soon_threadsafe(self._wake_one)
                i += 1
            self.loop.call_soon_threadsafe(self._wake_all)
        except RuntimeError:  # the loop closed under us (the run was abandoned): nothing is waiting
            return

    def _wake_one(self) -> None:
        while self.parked:
            woken = self.parked.popleft()
            if not woken.done():  # not cancelled (a stop)
                woken.set_result(None)
                break
        if not self.parked:
            self.someone_parked.clear()

    def _wake_all(self) -> None:
        while self.parked:
            woken = self.parked.popleft()
            if not woken.done():
                woken.set_result(None)

    def unsent(self, until: float) -> int:
        """Requests due before ``until`` that no worker got to send (the target was too slow to keep up)."""
        if until <= self.t0:
            return 0
        due_in_run = int((until - self.t0) * self.rate - 1e-9) + 1
        return max(0, due_in_run - self.taken)


async def _open_worker(target: ProbeTarget, recorder: Recorder, worker: int, schedule: _Schedule, clock) -> None:
    woken = True  # a worker that parked was woken for its request: any lateness is the prober's own, not a backlog
    while True:
        now = clock()
        due = schedule.claim(now)
        if due is None:
            if schedule.exhausted or schedule.stopped.is_set():
                return
            await schedule.park()
            woken = True
            continue
        late, woken = not woken and now - due > LATE_AFTER_S, False
        if now >= schedule.end + END_GRACE_S:
            schedule.taken -= 1  # not sent: whatever is still due stays unsent, counted by the schedule
            return
        try:
            gauges = await target.request(worker)
        except ProbeFailure as failure:
            recorder.error(due, failure.error_class, failure.gauges, failure.deployment, late=late)
            continue
        except Exception:  # a failure no kind foresaw: counted, never the end of the probe
            recorder.error(due, OTHER, late=late)
            continue
        recorder.ok(due, clock() - due, gauges, sent=now, late=late)


async def _closed_worker(target: ProbeTarget, recorder: Recorder, worker: int, t0: float, end: float, clock) -> None:
    now = clock()
    if t0 > now:
        await asyncio.sleep(t0 - now)
    while (start := clock()) < end:
        try:
            gauges = await target.request(worker)
        except ProbeFailure as failure:
            recorder.error(start, failure.error_class, failure.gauges, failure.deployment)
            if failure.error_class in (CONNECTION, DNS):
                await asyncio.sleep(CLOSED_LOOP_BACKOFF_S)
            continue
        except Exception:  # a failure no kind foresaw: counted, never the end of the probe
            recorder.error(start, OTHER)
            await asyncio.sleep(CLOSED_LOOP_BACKOFF_S)
            continue
        recorder.ok(start, clock() - start, gauges)
