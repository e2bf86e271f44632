"""FastStream's message metrics on a real nats-server, labelled by subject pattern: a signal naming a run (the
prober's stop subject) adds no series per run."""

from __future__ import annotations

import asyncio

import nats
from prometheus_client import generate_latest

from golive.shared.bus import Bus
from golive.shared.settings import Settings
from golive.shared.telemetry import ServiceMetrics, configure_logging


async def test_signals_of_three_runs_are_one_series_labelled_by_the_subject_pattern(settings: Settings):
    received: list[str] = []
    all_in = asyncio.Event()

    async def on_stop(msg) -> None:
        received.append(msg)
        if len(received) == 3:
            all_in.set()

    bus = Bus(settings, "prober", ServiceMetrics("prober"), configure_logging("prober", "WARNING"))
    bus.on_signal(settings.subjects.stop_probes("*"), on_stop, title="prober stop")
    await bus.start()
    try:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            for run_id in ("run-a", "run-b", "run-c"):
                await nc.publish(settings.subjects.stop_probes(run_id), b"{}")
            await nc.flush()
        finally:
            await nc.close()
        await asyncio.wait_for(all_in.wait(), 15)
    finally:
        await bus.stop()

    pattern = settings.subjects.stop_probes("*")
    exported = generate_latest(bus.metrics.registry).decode()
    assert "run-a" not in exported and "run-b" not in exported and "run-c" not in exported
    assert bus.metrics.registry.get_sample_value(
        "faststream_received_messages_total", {"app_name": "prober", "broker": "nats", "handler": pattern}) == 3
