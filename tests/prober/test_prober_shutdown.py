"""A prober that shuts down mid-hold hands the hold back, and another instance runs it: the leaving instance
withdraws its pull request first, so the work does not come straight back to it (and then sit out ack_wait)."""

from __future__ import annotations

import nats

from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, RunProbes
from golive.shared.events import ProbesCompleted, ProbeWindow
from tests.prober.prober_bus import RUN, events_until, send_run, started_prober


async def test_hold_of_a_prober_shutting_down_is_finished_by_another_instance(settings, http_target):
    # a hand-back that went astray would come back only after ack_wait: far beyond the wait for the answer below
    settings = settings.model_copy(update={"command_ack_wait_s": 300.0})
    leaving = await started_prober(settings)
    staying = None
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        probe = RunProbe(probe=HttpProbeSpec(name="app_health", url=http_target.url("/ok")), duration_s=1,
                         load=LoadSpec(mode="open", rate=20), window_s=0.5)
        await send_run(nc, settings, RunProbes(probes=[probe], duration_s=1.5), "cmd-hold")
        await events_until(sub, lambda e: isinstance(e.data, ProbeWindow))  # the leaving instance runs it
        staying = await started_prober(settings)
        await leaving.stop()
        seen = await events_until(sub, lambda e: isinstance(e.data, ProbesCompleted), timeout_s=60)
    finally:
        await nc.close()
        if staying is not None:
            await staying.stop()

    done = seen[-1].data
    assert done.passed and not done.stopped  # the whole hold, run again by the instance that stayed
    assert done.results[0].count >= 25
    handed_back = leaving.metrics.commands.labels("prober", RunProbes.TYPE, "handed_back")._value.get()
    assert handed_back == 1
