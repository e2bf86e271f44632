"""`golive resume RUN`: drive one run from this process, as a coordinator restricted to that run.

The run's events are replayed, its lease taken, and the run goes on from where its events stand (the
command it waits on is sent again under the same id, so JetStream drops it if it was already sent). While
another live coordinator holds the lease, this process says who and waits for the lease to end or expire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime

from nats.js.errors import NotFoundError

from golive.client import connect, read_run, unknown_run
from golive.exit_codes import EXIT_BY_OUTCOME, EXIT_INVALID, EXIT_NEEDS_HUMAN, RunNotControllable
from golive.services.coordinator.lease import describe_holder
from golive.services.coordinator.service import TICK_S, RunDriver
from golive.shared.bus import Bus, Defer
from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.shared.events import RunFinished
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging
from golive.shared.tracing import configure_tracing, shutdown_tracing


async def resume_run(settings: Settings, run_id: str, wait: bool, echo: Callable[[Envelope], None],
                     say: Callable[[str], None]) -> int:
    """Drive ``run_id`` here until it ends; returns its exit code. ``wait``: if another coordinator drives
    it, wait for that lease to end or expire (else EXIT_INVALID at once)."""
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        try:
            state, _events = await read_run(js, settings, run_id)
        except NotFoundError:  # no event stream at all under this subject root: no run was ever started
            state = None
        if state is None:
            raise await unknown_run(js, settings, run_id)
        if state.finished:
            raise RunNotControllable(f"run {run_id} already ended: {state.outcome}")
        # the coordinator's own JSON log lines would drown the run's events: warnings and errors only
        bus = Bus(settings, "coordinator", ServiceMetrics("coordinator"), configure_logging("coordinator", "WARNING"))
        configure_tracing("coordinator", settings.otel_exporter)  # the run's trace goes on (shared/tracing.py)
        await bus.start()
        driver = RunDriver(bus, only_run=run_id)
        try:
            if (holder := await driver.leases.other_holder(run_id)) is not None:
                say(describe_holder(holder, datetime.now(UTC)))
                if not wait:
                    return EXIT_INVALID
            await driver.start_ticking()
            keeper = asyncio.create_task(_keep_driving(driver, run_id, say))
            try:
                return await _follow(js, settings, driver, run_id, echo)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        finally:
            await driver.stop_ticking()
            await driver.release_all()  # stopped before the end (Ctrl-C): another coordinator takes it at once
            await bus.stop()
            await asyncio.to_thread(shutdown_tracing)
    finally:
        await nc.close()


async def _follow(js, settings: Settings, driver: RunDriver, run_id: str, echo: Callable[[Envelope], None]) -> int:
    """Print the run's events from its start and fold each new one into the driver, until it ends."""
    async with aclosing(read_events(js, settings.subjects.events_of_run(run_id), follow=True)) as feed:
        async for seq, envelope in feed:
            echo(envelope)
            with contextlib.suppress(Defer):  # another coordinator drives it now: we watch
                await driver.on_event(envelope, seq)
            if isinstance(envelope.data, RunFinished):
                return EXIT_BY_OUTCOME[envelope.data.outcome]
    return EXIT_NEEDS_HUMAN


async def _keep_driving(driver: RunDriver, run_id: str, say: Callable[[str], None]) -> None:
    """Take the run whenever nobody drives it (at start, or once another holder's lease expired); say so
    when this process starts or stops driving it."""
    driving = False
    while True:
        if run_id not in driver.leases:
            if driving:
                say(f"run {run_id}: lost its lease (another coordinator took it over); watching it")
                driving = False
            if run_id not in driver.finished:
                with contextlib.suppress(Defer):
                    await driver.take_over(run_id)
        if run_id in driver.leases and not driving:
            state = driver.runs[run_id]
            say(f"run {run_id}: driving it from here (step {state.position + 1}/{len(state.steps)} "
                f"{state.steps[state.position].name if state.position >= 0 else '-'})")
            driving = True
        await asyncio.sleep(TICK_S)
