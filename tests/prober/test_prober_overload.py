"""The prober knows when it is the problem (issue 16, item 5): when its own event loop cannot keep the schedule (a
busy machine, a slow callback), the requests it could not time are not counted against the target, the windows
it could not keep are inconclusive ("prober overloaded: lag X ms"), never a canary failure, and the result says so.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from golive.services.prober.run import run_probe
from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, Thresholds
from golive.shared.events import ProbeWindow
from golive.shared.judge import judge

BLOCK_S = 1.5  # the loop stalls this long every 3.5 s: the canary answers at once throughout


@pytest.fixture
def busy_core():
    """A process spinning on a core for the test's length (stopped by its pid)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        yield spinner
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.timing
async def test_a_prober_that_cannot_keep_its_schedule_does_not_fail_a_healthy_canary(http_target, busy_core):
    windows: list[ProbeWindow] = []

    async def collect(window: ProbeWindow) -> None:
        windows.append(window)

    loop = asyncio.get_running_loop()

    def stall() -> None:  # a callback that blocks the prober's event loop, as a slow one in production would
        time.sleep(BLOCK_S)
        stalls.append(loop.call_later(2.0, stall))

    stalls = [loop.call_later(1.3, stall)]
    cmd = RunProbe(probe=HttpProbeSpec(name="app_health", url=http_target.url("/ok")), duration_s=8.0, concurrency=4,
                   load=LoadSpec(mode="open", rate=10), window_s=1.0,
                   thresholds=Thresholds(p95_ms=1000, error_rate_pct=1, min_samples=5))
    try:
        result = await run_probe(cmd, {}, publish_window=collect)
    finally:
        for handle in stalls:
            handle.cancel()

    verdicts = [judge(w.stats, cmd.thresholds) for w in windows]
    assert not any(v.verdict == "fail" for v in verdicts), [v.why for v in verdicts]  # before: p95 1,4xx ms > 1,000 ms
    overloaded = [v for v in verdicts if v.verdict == "inconclusive" and "prober overloaded: lag" in v.why]
    assert overloaded, [v.why for v in verdicts]
    assert result.verdict == "pass", (result.summary, result.errors_by_class, result.count, [w.stats for w in windows])
    assert "prober overloaded" in result.summary and "requests not counted" in result.summary, result.summary
    assert result.overloaded > 0 and result.prober_lag_ms >= BLOCK_S * 1000 * 0.9


@pytest.mark.timing
async def test_a_busy_prober_does_not_make_a_healthy_canary_worse_than_stable(http_target, busy_core):
    """Canary and stable are the same endpoint; the prober's loop stalls 300 ms now and then (under the overload
    tolerance, so those requests count) beside a busy core. The stalls hit both requests of a pair alike, and the
    comparison uses each target's own time to answer: the sequential judge finds nothing, at a 10 ms tolerance."""
    loop = asyncio.get_running_loop()

    def stall() -> None:
        time.sleep(0.3)
        stalls.append(loop.call_later(0.7, stall))

    stalls = [loop.call_later(0.5, stall)]
    cmd = RunProbe(probe=HttpProbeSpec(name="canary", url=http_target.url("/ok?delay_ms=2")), duration_s=6.0,
                   baseline=HttpProbeSpec(name="stable", url=http_target.url("/ok?delay_ms=2")), concurrency=4,
                   load=LoadSpec(mode="open", rate=30), thresholds=Thresholds(p95_increase_ms=10))
    try:
        result = await run_probe(cmd, {})
    finally:
        for handle in stalls:
            handle.cancel()
    assert result.comparison is not None and result.comparison.method == "sequential-sign"
    assert result.comparison.verdict == "no difference", result.comparison.reason
    assert result.stopped is None and result.verdict == "pass", result.summary
