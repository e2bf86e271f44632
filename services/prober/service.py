"""Prober service shell: runs probes asked for on the bus and reports their numbers and verdicts.

Windows of a running probe are published as ProbeWindow events (a monitoring feed: they carry the
command id in ``command_id`` and no correlationid, so nothing mistakes a window for the answer). A probe
is stopped early by a StopProbe on the core NATS subject ``<root>.ctl.prober.<run_id>``, which every
instance hears and only the one running that probe acts on; it then answers with what it measured.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict

from faststream.nats import NatsMessage

from services.prober.kinds import ProbeSetupError
from services.prober.run import StopSignal, run_probe
from shared.bus import Bus, CommandError, HandBack, Work
from shared.commands import RunProbe, StopProbe, stop_probe_subject
from shared.envelope import ParseError, new_envelope, parse_envelope
from shared.events import ProbeCompleted, ProbeWindow
from shared.secrets import redact

SHUTDOWN = "the prober is shutting down"
# The bus's pull requests live 2 s (PullSub timeout in shared/bus.py), and FastStream unsubscribes only
# after the handlers finish: work handed back sooner can be delivered straight back to this leaving
# instance and then waits out ack_wait. Waiting until the last pull request has expired sends it elsewhere.
HAND_BACK_AFTER_S = 2.5
MAX_EARLY_STOPS = 1_000


def register(bus: Bus) -> dict[str, StopSignal]:
    """Wire the prober's command handlers and its stop subject onto ``bus``; returns the running probes."""
    running: dict[str, StopSignal] = {}
    # a stop can overtake its probe (core NATS is faster than the stream and a busy instance): kept a while
    early_stops: OrderedDict[str, str] = OrderedDict()

    async def on_run(cmd: RunProbe, work: Work) -> ProbeCompleted:
        command_id = work.envelope.id
        stop = StopSignal()
        running[command_id] = stop
        if command_id in early_stops:
            stop.set(early_stops.pop(command_id))
        shutdown = asyncio.create_task(_on_shutdown(work.stopping, stop))

        async def publish_window(window: ProbeWindow) -> None:
            # a window answers nothing: no correlationid; its cause is the command
            envelope = new_envelope(
                window, id=f"{command_id}/window/{window.target}/{window.index}", source=bus.source,
                runid=work.envelope.runid, subject=bus.subjects.event(work.envelope.runid, bus.service, window.short_name()),
                causationid=command_id,
            )
            try:
                await bus.publish(envelope, envelope.subject or "", bus.subjects.event_stream)
            except Exception as exc:  # the feed misses a window; the probe and its result go on
                bus.log.warning("probe.window_not_published", run_id=work.envelope.runid, index=window.index,
                                error=redact(f"{type(exc).__name__}: {exc}"))

        try:
            result = await run_probe(cmd, dict(os.environ), command_id=command_id, stop=stop, publish_window=publish_window)
        except ProbeSetupError as exc:
            raise CommandError(redact(str(exc)), "transient" if exc.transient else "invalid") from None
        finally:
            shutdown.cancel()
            running.pop(command_id, None)
        if stop.reason == SHUTDOWN:
            await asyncio.sleep(HAND_BACK_AFTER_S)
            raise HandBack()  # partial numbers would judge a shorter run than asked: another instance redoes it
        bus.log.info("probe.completed", run_id=work.envelope.runid, probe=cmd.probe.name, passed=result.passed,
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
    bus.broker.subscriber(stop_probe_subject(bus.subjects.root, "*"), title="prober stop")(on_stop)
    return running


async def _on_shutdown(stopping: asyncio.Event, stop: StopSignal) -> None:
    await stopping.wait()
    stop.set(SHUTDOWN)
