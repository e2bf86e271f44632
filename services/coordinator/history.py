"""The coordinator's side of the run history (shared/run_history.py): it writes each run's summary as it folds the
run, each post-deploy watch's record as it drives the watch, and rebuilds, once, the summaries of runs recorded
before there was a history.

When: a run's summary is written when it starts, whenever what a listing shows of it changes (paused, rolling back,
the next step), and at its end from its whole history (the same fold: shared/run_summary.py). A watch's record is
written when it starts, after each check and when it ends. A write that fails is logged and costs nothing but a stale
line until the next one; the end's write is retried by the rebuild at the next start of a coordinator.

Runs without a summary (recorded before this bucket existed, or whose end's write failed): each coordinator, when
it starts, lists the runs that started (the server filters the log on ``<root>.evt.*.coordinator.run_started``: one
event per run) and summarises each one missing from the bucket from its own events, one run at a time. Done once:
the summaries it writes are there for the next start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError

from golive.services.coordinator.post_deploy import WatchState
from golive.services.coordinator.post_deploy import decide as decide_watch
from golive.shared.buckets import open_bucket
from golive.shared.bus import Bus
from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.shared.events import RunStarted
from golive.shared.run_history import bucket_config, read_runs, read_watches, run_key, watch_key
from golive.shared.run_summary import RunSummary, WatchRecord, summary_of
from golive.shared.subjects import Subjects


def watch_record(state: WatchState | None) -> WatchRecord | None:
    """A watch as `golive watch` lists it; None before it began (or for a plan without one)."""
    if state is None or state.started_at is None or state.ends_at is None:
        return None
    return WatchRecord(run_id=state.run_id, deploy_id=state.deploy_id, started_at=state.started_at,
                       ends_at=state.ends_at, checks_done=state.checks_done, checks_planned=state.checks_planned,
                       breaches=state.breaches, summaries=state.summaries, ended=state.ended)


def watch_of(events: list[Envelope]) -> WatchRecord | None:
    """The record of the watch in a run's events (None: the run was never watched)."""
    state: WatchState | None = None
    for envelope in events:
        state, _ = decide_watch(state, envelope)
    return watch_record(state)


class RunHistory:
    """The thin shell over the bucket: put a run's summary, a watch's record; rebuild the missing summaries."""

    def __init__(self, kv: Any, js: JetStreamContext, subjects: Subjects) -> None:
        self.kv, self.js, self.subjects = kv, js, subjects

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects, replicas: int = 1, log: Any = None) -> RunHistory:
        return cls(await open_bucket(js, bucket_config(subjects.root, replicas), log), js, subjects)

    @classmethod
    def opened_once(cls, bus: Bus) -> Callable[[], Awaitable[RunHistory]]:
        """``bus``'s bucket, opened on first use (the bus may not be connected yet) and the same one after."""
        opened: list[RunHistory] = []

        async def history() -> RunHistory:
            if not opened:
                opened.append(await cls.open(bus.jetstream(), bus.subjects, bus.settings.stream_replicas, bus.log))
            return opened[0]

        return history

    async def put_run(self, summary: RunSummary) -> None:
        await self.kv.put(run_key(summary.run_id), summary.model_dump_json().encode())

    async def put_watch(self, record: WatchRecord) -> None:
        await self.kv.put(watch_key(record.run_id), record.model_dump_json().encode())

    async def _create(self, key: str, record: RunSummary | WatchRecord) -> None:
        """Write ``key`` unless it exists: a rebuild never overwrites what a run's driver wrote meanwhile."""
        try:
            await self.kv.create(key, record.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            pass

    async def started_runs(self) -> list[str]:
        """Every run that started, in stream order: one event each, filtered by the server."""
        subject = self.subjects.events_named("coordinator", RunStarted.short_name())
        async with aclosing(read_events(self.js, subject)) as feed:
            return [envelope.runid async for _seq, envelope in feed if isinstance(envelope.data, RunStarted)]

    async def rebuild_missing(self, log: Any = None) -> int:
        """Summarise every run that started and has no summary here, from its own events; how many were written."""
        root = self.subjects.root
        have = {r.run_id for r in await read_runs(self.js, root)}
        watched = {w.run_id for w in await read_watches(self.js, root)}
        written = 0
        for run_id in await self.started_runs():
            if run_id in have:
                continue
            async with aclosing(read_events(self.js, self.subjects.events_of_run(run_id))) as feed:
                events = [envelope async for _seq, envelope in feed]
            if (summary := summary_of(events)) is None:
                continue
            await self._create(run_key(run_id), summary)
            if run_id not in watched and (record := watch_of(events)) is not None:
                await self._create(watch_key(run_id), record)
            written += 1
        if log is not None and written:
            log.info("history.rebuilt", runs=written, reason="runs recorded without a summary in the run history")
        return written
