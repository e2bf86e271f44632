"""The open loop's bookkeeping against a real HTTP server that is slower than the schedule: every due
request is either answered or counted as unsent, none twice, and latency counts from the due time."""

from __future__ import annotations

import pytest

from golive.services.prober.run import run_probe
from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe

pytestmark = pytest.mark.timing  # measured latencies and rates decide it (pyproject: markers)


async def test_requests_a_slow_target_cannot_take_are_unsent_and_every_due_request_is_accounted_for(http_target):
    # 100/s for 1 s on one connection to a target that takes 50 ms: it can answer about 30 (with the grace)
    cmd = RunProbe(probe=HttpProbeSpec(name="slow", url=http_target.url("/ok?delay_ms=50")), duration_s=1.0,
                   concurrency=1, load=LoadSpec(mode="open", rate=100))
    result = await run_probe(cmd, {})
    unsent = result.errors_by_class.get("unsent", 0)
    assert result.count + result.errors + result.overloaded == 100  # each due request once: answered, failed, unsent or not timed
    assert set(result.errors_by_class) == {"unsent"} and 50 <= unsent <= 85
    assert result.p99_ms >= 400  # the last answered waited behind the backlog since its due time


async def test_workers_sharing_the_schedule_send_each_due_request_once(http_target):
    cmd = RunProbe(probe=HttpProbeSpec(name="fast", url=http_target.url("/ok")), duration_s=1.0, concurrency=4,
                   load=LoadSpec(mode="open", rate=200))
    result = await run_probe(cmd, {})
    # a busy machine may leave a few unsent, or stall the prober (those it could not time are not counted, but
    # counted as such); none is sent twice, none is lost
    assert result.count + result.errors + result.overloaded == 200 and set(result.errors_by_class) <= {"unsent"}
    assert result.count >= 100
