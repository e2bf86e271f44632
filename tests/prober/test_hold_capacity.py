"""Holds are not capped by a fixed worker count (issue 16, item 4): one prober runs as many holds at once as its
connection budget allows (GOLIVE_PROBER_MAX_CONNECTIONS), and refuses the hold that would go past it with a
reason the coordinator reports, instead of queueing it while the hold's step timeout runs."""

from __future__ import annotations

import nats

from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, RunProbes, StopProbe
from golive.shared.envelope import new_envelope
from golive.shared.events import CommandFailed, ProbesCompleted, ProbeWindow
from tests.prober.prober_bus import RUN, events_until, send_run, started_prober

HOLDS = 24


def small_hold(url: str, duration_s: float, concurrency: int = 1) -> RunProbes:
    check = RunProbe(probe=HttpProbeSpec(name="app_health", url=url), duration_s=duration_s, concurrency=concurrency,
                     load=LoadSpec(mode="open", rate=4), window_s=1.0)
    return RunProbes(probes=[check], duration_s=duration_s, label="stage 1 (10%)")


async def test_many_small_holds_run_at_once_on_one_prober(settings, http_target):
    """50 small concurrent runs took 71 s instead of 11 s: one prober ran at most 8 holds at once."""
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        for i in range(HOLDS):
            await send_run(nc, settings, small_hold(http_target.url("/ok"), duration_s=8.0), f"cmd-hold-{i}")
        events, answers = [], 0
        while answers < HOLDS:
            events += await events_until(sub, lambda e: isinstance(e.data, ProbesCompleted | CommandFailed), timeout_s=120)
            answers += 1
    finally:
        await nc.close()
        await bus.stop()

    # in stream order, a hold measures from its first window to its answer: with a cap of 8, a 9th hold could
    # not publish a window before one of the 8 had answered
    measuring: set[str] = set()
    most = 0
    for event in events:
        if isinstance(event.data, ProbeWindow):
            measuring.add(event.causationid or "")
        elif isinstance(event.data, ProbesCompleted | CommandFailed):
            measuring.discard(event.correlationid or "")
        most = max(most, len(measuring))
    assert most > 8, most
    assert not [e.data for e in events if isinstance(e.data, CommandFailed)]  # none refused


async def test_a_prober_out_of_its_connection_budget_refuses_a_hold_saying_why(settings, http_target):
    bus = await started_prober(settings.model_copy(update={"prober_max_connections": 2}))
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        await send_run(nc, settings, small_hold(http_target.url("/ok"), duration_s=600, concurrency=2), "cmd-big")
        await events_until(sub, lambda e: isinstance(e.data, ProbeWindow))  # measuring: the budget is spent
        await send_run(nc, settings, small_hold(http_target.url("/ok"), duration_s=1.0), "cmd-refused")
        [refused] = [e for e in await events_until(sub, lambda e: isinstance(e.data, CommandFailed))
                     if isinstance(e.data, CommandFailed)]

        stop = StopProbe(command_id="cmd-big", reason="done")
        await nc.publish(settings.subjects.stop_probes(RUN), new_envelope(stop, id="stop-big", source="/tests",
                                                                          runid=RUN).to_json())
        await events_until(sub, lambda e: isinstance(e.data, ProbesCompleted) and e.correlationid == "cmd-big")
        await send_run(nc, settings, small_hold(http_target.url("/ok"), duration_s=1.0), "cmd-after")
        [after] = [e for e in await events_until(sub, lambda e: isinstance(e.data, ProbesCompleted | CommandFailed))
                   if isinstance(e.data, ProbesCompleted | CommandFailed)]
    finally:
        await nc.close()
        await bus.stop()

    assert refused.correlationid == "cmd-refused"
    assert refused.data.failure == "transient"  # the coordinator retries it (plan.retries), then fails the step
    assert "at capacity" in refused.data.reason and "GOLIVE_PROBER_MAX_CONNECTIONS" in refused.data.reason, refused.data
    assert "needs 1 connection" in refused.data.reason and "2 of 2 in use" in refused.data.reason, refused.data
    assert isinstance(after.data, ProbesCompleted) and after.data.passed  # the budget is given back
