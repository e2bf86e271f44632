"""Prober service shell: runs probes asked for on the bus and reports their numbers and verdicts.

A RunProbe runs one probe and answers ProbeCompleted; a RunProbes runs several at once on one clock (a
canary stage's hold: its checks and the guard probe) and answers one ProbesCompleted. Windows of a running
probe are published as ProbeWindow events (a monitoring feed: they carry the command id in ``command_id``
and no correlationid, so nothing mistakes a window for the answer). A probe or a set is stopped early by a
StopProbe on the core NATS subject ``<root>.ctl.prober.<run_id>``, which every instance hears and only the
one running it acts on; it then answers with what it measured. An instance runs every probe whose connections
fit in its budget and refuses the one that does not at once, as a transient CommandFailed that says so
(capacity.py).
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from faststream.nats import NatsMessage
from prometheus_client import Counter, Gauge

from golive.services.prober.capacity import AtCapacity, ConnectionBudget, connections_needed
from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import StopSignal, WindowSink, probes_completed, probes_of, run_probe, run_probes
from golive.shared.bus import Bus, CommandError, HandBack, Work
from golive.shared.commands import RunProbe, RunProbes, StopProbe
from golive.shared.envelope import ParseError, new_envelope, parse_envelope
from golive.shared.events import ProbeCompleted, ProbesCompleted, ProbeWindow
from golive.shared.secrets import redact

SHUTDOWN = "the prober is shutting down"
MAX_EARLY_STOPS = 1_000
T = TypeVar("T")


def register(bus: Bus) -> dict[str, StopSignal]:
    """Wire the prober's command handlers and its stop subject onto ``bus``; returns the running probes."""
    running: dict[str, StopSignal] = {}
    budget = ConnectionBudget(bus.settings.prober_max_connections)
    registry = bus.metrics.registry
    holds_running = Gauge("golive_prober_holds_running", "Probes and holds this prober runs now", registry=registry)
    connections_held = Gauge("golive_prober_connections_held", "Connections its running probes and holds need",
                             registry=registry)
    refused = Counter("golive_prober_refused_total", "Probes and holds refused: the connection budget was spent",
                      registry=registry)
    # a stop can overtake its probe (core NATS is faster than the stream and a busy instance): kept a while
    early_stops: OrderedDict[str, str] = OrderedDict()

    async def stoppable(work: Work, probes: Sequence[RunProbe], measure: Callable[[StopSignal], Awaitable[T]]) -> T:
        """Run ``measure`` (of ``probes``) as the work of ``work``'s command: refused at once when its connections
        do not fit in the budget, stoppable by a StopProbe naming it, handed back when the service shuts down,
        failed when a probe cannot start."""
        def show() -> None:
            holds_running.set(budget.holds)
            connections_held.set(budget.in_use)

        try:
            with budget.claim(connections_needed(probes)):
                show()
                return await _stoppable(work, measure)
        except AtCapacity as exc:
            refused.inc()
            bus.log.warning("probe.refused", run_id=work.envelope.runid, command_id=work.envelope.id, reason=str(exc))
            raise CommandError(str(exc), "transient") from None
        finally:
            show()

    async def _stoppable(work: Work, measure: Callable[[StopSignal], Awaitable[T]]) -> T:
        command_id = work.envelope.id
        stop = StopSignal()
        running[command_id] = stop
        if command_id in early_stops:
            stop.set(early_stops.pop(command_id))
        shutdown = asyncio.create_task(_on_shutdown(work.stopping, stop))
        try:
            result = await measure(stop)
        except ProbeSetupError as exc:
            raise CommandError(redact(str(exc)), "transient" if exc.transient else "invalid") from None
        finally:
            shutdown.cancel()
            running.pop(command_id, None)
        if stop.reason == SHUTDOWN:
            # partial numbers would judge a shorter run than asked: another instance redoes it (the bus left
            # the command consumer before saying ``stopping``, so the hand-back does not come back here)
            raise HandBack()
        return result

    def window_publisher(work: Work, event_id: Callable[[ProbeWindow], str]) -> WindowSink:
        async def publish_window(window: ProbeWindow) -> None:
            # a window answers nothing: no correlationid; its cause is the command
            envelope = new_envelope(
                window, id=event_id(window), source=bus.source, runid=work.envelope.runid,
                subject=bus.subjects.event(work.envelope.runid, bus.service, window.short_name()),
                causationid=work.envelope.id,
            )
            try:
                await bus.publish(envelope, envelope.subject or "", bus.subjects.event_stream)
            except Exception as exc:  # the feed misses a window; the probe and its result go on
                bus.log.warning("probe.window_not_published", run_id=work.envelope.runid, probe=window.probe,
                                index=window.index, error=redact(f"{type(exc).__name__}: {exc}"))

        return publish_window

    async def on_run(cmd: RunProbe, work: Work) -> ProbeCompleted:
        command_id = work.envelope.id
        publish = window_publisher(work, lambda w: f"{command_id}/window/{w.target}/{w.index}")
        result = await stoppable(work, [cmd], lambda stop: run_probe(cmd, dict(os.environ), command_id=command_id, stop=stop,
                                                              publish_window=publish))
        bus.log.info("probe.completed", run_id=work.envelope.runid, probe=cmd.probe.name, passed=result.passed,
                     summary=result.summary)
        return result

    async def on_run_set(cmd: RunProbes, work: Work) -> ProbesCompleted:
        command_id = work.envelope.id
        names = [probe.probe.name for probe in cmd.probes]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise CommandError(f"probes {', '.join(twice)} appear more than once in one RunProbes; their windows "
                               "would be indistinguishable: give every probe of a hold its own name", "invalid")
        publish = window_publisher(work, lambda w: f"{command_id}/window/{w.probe}/{w.target}/{w.index}")
        probes = probes_of(cmd)

        async def measure(stop: StopSignal) -> ProbesCompleted:
            results = await run_probes(probes, dict(os.environ), command_id=command_id, stop=stop, publish_window=publish)
            return probes_completed(results, stop)

        result = await stoppable(work, probes, measure)
        bus.log.info("probes.completed", run_id=work.envelope.runid, probes=names, passed=result.passed,
                     summary=result.summary)
        return result

    async def on_stop(msg: NatsMessage) -> None:
        try:
            envelope = parse_envelope(msg.raw_message.data)
        except ParseError as exc:
            bus.log.warning("probe.stop_unreadable", error=redact(str(exc)))
            return
        if not isinstance(envelope.data, StopProbe):
            return
        reason = f"stop requested: {envelope.data.reason or 'no reason given'}"
        if envelope.data.command_id in running:
            running[envelope.data.command_id].set(reason)
            bus.log.info("probe.stopping", run_id=envelope.runid, command_id=envelope.data.command_id)
        else:
            early_stops[envelope.data.command_id] = reason
            while len(early_stops) > MAX_EARLY_STOPS:
                early_stops.popitem(last=False)

    bus.on_command(RunProbe, on_run)
    bus.on_command(RunProbes, on_run_set)
    bus.on_signal(bus.subjects.stop_probes("*"), on_stop, title="prober stop")
    return running


async def _on_shutdown(stopping: asyncio.Event, stop: StopSignal) -> None:
    await stopping.wait()
    stop.set(SHUTDOWN)
