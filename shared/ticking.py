"""The clock of a driver: jobs run in the background, each every so often (ticks, lease renewals, adopting runs).

A round that fails is logged and the next round tries again: a job stops only when the driver stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from golive.shared.secrets import redact


class Ticking:
    """Background jobs, each run every ``period_s``; ``stop`` cancels them all and waits for them to end."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, period_s: float, job: Callable[[], Awaitable[None]], failed: str, at_once: bool = False) -> None:
        """Run ``job`` every ``period_s`` (first at once with ``at_once``, else after one period); a round that raises
        is logged as ``failed`` (the bus is away, say) and the next one tries again."""

        async def rounds() -> None:
            if not at_once:
                await asyncio.sleep(period_s)
            while True:
                try:
                    await job()
                except Exception as exc:
                    self.log.warning(failed, error=redact(str(exc)))
                await asyncio.sleep(period_s)

        self._tasks.append(asyncio.create_task(rounds()))

    def once(self, job: Callable[[], Awaitable[None]], failed: str, retry_s: float) -> None:
        """Run ``job`` once, at once; tried again every ``retry_s`` until a round does not raise (each failure
        logged as ``failed``)."""

        async def until_done() -> None:
            while True:
                try:
                    await job()
                    return
                except Exception as exc:
                    self.log.warning(failed, error=redact(str(exc)))
                await asyncio.sleep(retry_s)

        self._tasks.append(asyncio.create_task(until_done()))

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
