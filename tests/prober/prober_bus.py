"""The prober service on a test's own bus: started in the test's process, sent run commands as the coordinator
sends them, its events read until the one a test waits for."""

from __future__ import annotations

import time

from golive.serve import concurrency
from golive.services.prober.service import register
from golive.shared.bus import Bus
from golive.shared.commands import RunProbe, RunProbes, command_target
from golive.shared.envelope import Envelope, new_envelope, parse_envelope
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging

RUN = "run-prober"


async def started_prober(settings: Settings) -> Bus:
    """The prober's handlers on a started bus, as `golive serve prober` makes it (stop it with ``await bus.stop()``)."""
    bus = Bus(settings, "prober", ServiceMetrics("prober"), configure_logging("prober", "WARNING"),
              max_workers=concurrency("prober", settings))
    register(bus)
    await bus.start()
    return bus


async def send_run(nc, settings: Settings, cmd: RunProbe | RunProbes, command_id: str) -> None:
    """On the command's own subject: a command on another type's subject is dead-lettered as untrusted."""
    body = new_envelope(cmd, id=command_id, source="/tests", runid=RUN).to_json()
    await nc.jetstream().publish(settings.subjects.command(*command_target(type(cmd))), body,
                                 stream=settings.subjects.command_stream, headers={"Nats-Msg-Id": command_id})


async def events_until(sub, done, timeout_s: float = 30.0) -> list[Envelope]:
    """The events ``sub`` brings, up to and including the first for which ``done(event)`` holds."""
    seen: list[Envelope] = []
    deadline = time.monotonic() + timeout_s
    while not seen or not done(seen[-1]):
        msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(parse_envelope(msg.data))
    return seen
