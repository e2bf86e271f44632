"""A driver's one-off job (shared/ticking.py ``once``): tried again after a failure, never again after it succeeded."""

from __future__ import annotations

import asyncio

import structlog

from golive.shared.ticking import Ticking


async def test_a_job_run_once_is_tried_again_until_it_succeeds_then_never_again():
    calls: list[int] = []
    done = asyncio.Event()

    async def rebuild() -> None:
        calls.append(len(calls))
        if len(calls) < 3:
            raise ConnectionError("the bus is away")
        done.set()

    clock = Ticking(structlog.get_logger())
    clock.once(rebuild, "history.rebuild_failed", retry_s=0.01)
    await done.wait()
    for _ in range(20):  # the job is not run again, however long the clock goes on
        await asyncio.sleep(0)
    await clock.stop()
    assert calls == [0, 1, 2]
