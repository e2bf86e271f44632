"""Stopping a load: it ends only once every request it sent has ended, so the target is closed after them, never
under them (a request's cancellation is work too: psycopg asks the server to cancel the query)."""

from __future__ import annotations

import asyncio
import time

import pytest

from golive.services.prober.load import Recorder, run_load
from golive.services.prober.sql_probe import SqlTarget
from golive.shared.plan.probes import SqlProbeSpec


@pytest.mark.parametrize("rate", [20.0, None], ids=["open loop", "closed loop"])
async def test_a_stopped_load_ends_only_when_every_request_it_sent_has_ended(database_url, rate):
    spec = SqlProbeSpec(name="slow", database_url_env="DB", query="SELECT pg_sleep(5)", timeout_ms=10_000)
    target = SqlTarget.from_spec(spec, {"DB": database_url})
    await target.open(4)
    before = asyncio.all_tasks()
    t0 = time.monotonic()
    load = asyncio.create_task(run_load(target, Recorder.starting(t0), concurrency=4, rate=rate, t0=t0, end=t0 + 30))
    try:
        await asyncio.sleep(0.5)  # every worker waits on pg_sleep(5)
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
        left = [task for task in asyncio.all_tasks() - before if not task.done()]
    finally:
        await target.close()
    assert left == []
