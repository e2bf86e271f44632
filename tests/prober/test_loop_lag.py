"""The prober's own loop lag (services/prober/loop_lag.py) on a real event loop: a callback that blocks the loop is
seen as a stall from the moment it began, and a request in flight across it is not counted against the target."""

from __future__ import annotations

import asyncio
import time

import pytest

from golive.services.prober.load import Recorder
from golive.services.prober.loop_lag import LoopLag


@pytest.mark.timing  # a busy machine can stall the loop after the block too
async def test_a_blocking_callback_is_a_stall_and_what_was_in_flight_across_it_is_not_counted():
    lag = LoopLag()
    recorder = Recorder.starting(counted_from=0.0, loop_lag=lag)
    lag.start()
    try:
        await asyncio.sleep(0.1)
        assert not lag.stalled_since(0.0)
        in_flight_from = time.monotonic()
        time.sleep(0.8)  # the loop is blocked: as a slow callback or a starved process would block it
        await asyncio.sleep(0.05)
        recorder.ok(in_flight_from, time.monotonic() - in_flight_from, None)
        after = time.monotonic()
        await asyncio.sleep(0.05)
        recorder.ok(after, 0.001, None)
    finally:
        lag.stop()

    assert lag.stalled_since(in_flight_from) and not lag.stalled_since(after)
    assert lag.worst_ms >= 750 and recorder.window.prober_lag_ms >= 750
    assert (recorder.total.count, recorder.total.overloaded) == (1, 1)  # the one after the stall counts
