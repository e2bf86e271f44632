"""Reacting to a run's end: its report, validation file and badges (lock-in), rebuilt from its events.

The files readers look for on run_finished are written before that event is published (quick: no chart), so a
reader that sees the event finds them; the chart and report.html are drawn after,
in another process and not awaited: matplotlib would hold the GIL, and with it every run's decisions. Artifacts never
stop the saga: a failure is logged, and `golive report RUN` builds them again.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from golive.services.coordinator.artifacts import build_artifacts, run_directory, write_artifacts, write_report_pages
from golive.services.coordinator.chart_worker import die_with_parent
from golive.services.coordinator.history import RunHistory
from golive.shared.bus import Bus
from golive.shared.envelope import Envelope
from golive.shared.extras import missing_extra
from golive.shared.fold import RunFolds
from golive.shared.run_summary import summary_of
from golive.shared.secrets import redact

DRAWING_WAIT_S = 10.0  # a stopping coordinator still finishes the reports being drawn, this long at most


class RunReports:
    """Writes each run's artifacts when it ends; draws its chart and pages in a worker process started on first use."""

    def __init__(self, bus: Bus, log_of: RunFolds, history: Callable[[], Awaitable[RunHistory]] | None = None) -> None:
        self.bus = bus
        self.log_of = log_of  # the run's events, read from the stream
        self.history = history  # where the run's summary is kept (services/coordinator/history.py)
        self._drawer: ProcessPoolExecutor | None = None
        self._drawing: set[asyncio.Task] = set()

    async def write_lock_in(self, run_id: str, pending: Sequence[Envelope] = ()) -> list[Envelope] | None:
        """Write the run's validation file, report and badges from its history plus ``pending``, the events of the
        deciding batch not yet published. Called before run_finished goes out, so whoever sees that event finds the
        files. Returns the events written from, or None when writing failed (logged; the run still ends)."""
        try:
            events = [envelope for _seq, envelope in await self.log_of.history(run_id)]
            known = {envelope.id for envelope in events}
            events += [envelope for envelope in pending if envelope.id not in known]
            directory = run_directory(self.bus.settings.artifacts_dir, run_id)  # never outside artifacts/
            written = await asyncio.to_thread(lambda: write_artifacts(build_artifacts(events, chart=False), directory))
            self.bus.log.info("run.artifacts_written", run_id=run_id, directory=str(directory), files=len(written))
            return events
        except Exception as exc:  # artifacts must never stop the saga; `golive report RUN` can rebuild them
            self.bus.log.error("run.artifacts_failed", run_id=run_id, error=redact(str(exc)))
            return None

    async def run_ended(self, run_id: str, events: list[Envelope] | None) -> None:
        """After run_finished is published: the run's summary for listings, and its chart and pages drawn in the
        background (from ``events``, what write_lock_in wrote from; nothing to draw when that failed, or when the
        settings say not to: ``report_pages``)."""
        if events is None:
            return
        try:
            await self._summarise(run_id, events)
            if not self.bus.settings.report_pages:
                return
            directory = run_directory(self.bus.settings.artifacts_dir, run_id)
            pages = asyncio.create_task(self._draw_pages(run_id, events, directory))
            self._drawing.add(pages)
            pages.add_done_callback(self._drawing.discard)
        except Exception as exc:  # artifacts must never stop the saga; `golive report RUN` can rebuild them
            self.bus.log.error("run.artifacts_failed", run_id=run_id, error=redact(str(exc)))

    async def _summarise(self, run_id: str, events: list[Envelope]) -> None:
        """The run's summary from its whole history, as listings and the weekly report read it."""
        if self.history is None or (summary := summary_of(events)) is None:
            return
        try:
            await (await self.history()).put_run(summary)
        except Exception as exc:  # the next coordinator to start writes it (history.py: rebuild_missing)
            self.bus.log.warning("history.write_failed", run_id=run_id, error=redact(str(exc)))

    async def _draw_pages(self, run_id: str, events: list[Envelope], directory: Path) -> None:
        if (missing := missing_extra("reports", "a run's chart, report.html and badges")) is not None:
            self.bus.log.warning("run.report_not_drawn", run_id=run_id, reason=str(missing))  # the other files are written
            return
        try:
            if self._drawer is None:
                # spawn, not fork: this process runs threads and an event loop that a fork would copy mid-flight
                self._drawer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=die_with_parent, initargs=(os.getpid(),))
            written = await asyncio.get_running_loop().run_in_executor(
                self._drawer, write_report_pages, [e.to_json() for e in events], str(directory))
            self.bus.log.info("run.report_drawn", run_id=run_id, directory=str(directory), files=len(written))
        except Exception as exc:  # the other files are written; `golive report RUN` draws these again
            self.bus.log.error("run.report_drawing_failed", run_id=run_id, error=redact(str(exc)))

    async def stop(self) -> None:
        """Let the reports being drawn finish (bounded), then stop the drawing process."""
        if self._drawing:
            await asyncio.wait(self._drawing, timeout=DRAWING_WAIT_S)
        if self._drawer is not None:
            self._drawer.shutdown(wait=False, cancel_futures=True)

