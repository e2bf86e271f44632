"""Folding runs from the event log, in stream order: the part every driver that keeps runs in memory shares (the
coordinator's runs and post-deploy watches, the notifier's views of runs).

A driver keeps, per run, the state folded so far and the stream sequence of the last event folded into it. A run it
has not seen (after a restart, or taken over from another instance) is rebuilt from the run's events in the log
(``history``). Events of one run may come out of order: the consumer is shared by every instance of a service, and an
instance that must not handle an event hands it back (Defer). So an event is never applied before the events of its
run that precede it in the stream (``follow`` reads those from the log first), and never twice. Runs that ended are
remembered by id, boundedly, so their late events are dropped without a replay.

What applying an event means (deciding, publishing, posting) is the driver's own; so are leases (who may drive a run).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Generic, TypeVar

from nats.js import JetStreamContext

from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.shared.subjects import Subjects

S = TypeVar("S")


class RunFolds(Generic[S]):
    """The runs one driver folds: ``states`` (run id -> state), ``applied`` (run id -> the stream sequence of the last
    event in that state) and ``ended`` (run id -> the last sequence folded, for runs that ended; the oldest forgotten
    first beyond ``ended_kept``: a process that ran for months must not keep every run it saw)."""

    def __init__(self, jetstream: Callable[[], JetStreamContext], subjects: Subjects, ended_kept: int) -> None:
        self._jetstream = jetstream  # asked at each read: a service's connection exists only once it started
        self.subjects = subjects
        self.states: dict[str, S] = {}
        self.applied: dict[str, int] = {}
        self.ended: OrderedDict[str, int] = OrderedDict()
        self.ended_kept = ended_kept

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.states

    def keep(self, run_id: str, state: S, seq: int) -> None:
        """``state`` is the run's fold through stream sequence ``seq``."""
        self.states[run_id], self.applied[run_id] = state, seq

    def forget(self, run_id: str) -> S | None:
        """Stop folding the run here (it ended, or another instance drives it now); its state, if any."""
        self.applied.pop(run_id, None)
        return self.states.pop(run_id, None)

    def end(self, run_id: str, last_seq: int = 0) -> None:
        """The run ended (or never started): forgotten, its id remembered so its late events cost nothing."""
        self.forget(run_id)
        self.ended[run_id] = last_seq
        self.ended.move_to_end(run_id)
        while len(self.ended) > self.ended_kept:
            self.ended.popitem(last=False)

    def reopen(self, run_id: str) -> None:
        """An ended run goes on (`golive retry`): folded again from its events at its next one."""
        self.ended.pop(run_id, None)

    def clear(self) -> None:
        self.states.clear()
        self.applied.clear()

    async def history(self, run_id: str, before_seq: int | None = None) -> list[tuple[int, Envelope]]:
        """The run's events in stream order, with their sequences (those before ``before_seq`` only, if given)."""
        subject = self.subjects.events_of_run(run_id)
        up_to = before_seq - 1 if before_seq is not None else None
        async with aclosing(read_events(self._jetstream(), subject, up_to_seq=up_to)) as feed:
            return [item async for item in feed]

    async def follow(self, envelope: Envelope, seq: int, apply: Callable[[Envelope], Awaitable[None]],
                     earlier: Callable[[Envelope], Awaitable[None]] | None = None) -> None:
        """Fold ``envelope`` (stream sequence ``seq``) into its run, after the run's events between the last one
        folded and it, read from the log: ``earlier`` (default ``apply``) gets those, ``apply`` gets ``envelope``.
        Nothing when ``seq`` was folded already (a redelivery). Either may end the folding of the run (``forget``,
        ``end``): nothing more is applied then. The run must be folded here (``keep``)."""
        run_id = envelope.runid
        if seq <= self.applied[run_id]:
            return
        if seq > self.applied[run_id] + 1:
            subject = self.subjects.events_of_run(run_id)
            async with aclosing(read_events(self._jetstream(), subject, from_seq=self.applied[run_id] + 1,
                                            up_to_seq=seq - 1)) as feed:
                async for between, event in feed:
                    if run_id not in self.applied:
                        return
                    await (earlier or apply)(event)
                    if run_id in self.applied:
                        self.applied[run_id] = between
        if run_id not in self.applied:
            return
        await apply(envelope)
        if run_id in self.applied:
            self.applied[run_id] = seq
