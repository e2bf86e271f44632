"""The prober service on a real bus: windows on the event stream while a probe runs (not mistaken for its
answer), a prompt stop through the core NATS control subject, a bad target answered, never a crash."""

from __future__ import annotations

import asyncio
import time

import nats

from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, StopProbe
from golive.shared.envelope import new_envelope
from golive.shared.events import CommandFailed, ProbeCompleted, ProbeWindow
from tests.prober.prober_bus import RUN, events_until, send_run, started_prober


async def test_long_probe_publishes_windows_and_stops_promptly_on_request(settings, http_target):
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        hold = RunProbe(probe=HttpProbeSpec(name="app_health", url=http_target.url("/ok")), duration_s=600,
                        load=LoadSpec(mode="open", rate=20), window_s=0.5, label="stage 1 (10%)")
        await send_run(nc, settings, hold, "cmd-hold")
        windows = await events_until(sub, lambda e: isinstance(e.data, ProbeWindow) and e.data.index == 1)
        asked = time.monotonic()
        stop = StopProbe(command_id="cmd-hold", reason="the operator ended the hold")
        await nc.publish(settings.subjects.stop_probes(RUN),
                         new_envelope(stop, id="stop-1", source="/tests", runid=RUN).to_json())
        rest = await events_until(sub, lambda e: isinstance(e.data, ProbeCompleted))
        answered_after = time.monotonic() - asked
    finally:
        await nc.close()
        await bus.stop()

    assert all(w.correlationid is None and w.causationid == "cmd-hold" for w in windows)
    assert [w.data.index for w in windows] == [0, 1] and windows[0].data.stats.count >= 8
    completed = rest[-1]
    assert completed.correlationid == "cmd-hold"
    assert completed.data.stopped and "the operator ended the hold" in completed.data.stopped
    assert completed.data.count >= 20 and completed.data.passed
    assert answered_after < 10  # not the 600 s hold (a generous bound: the point is that it did not run on)


async def test_probe_of_a_target_that_cannot_be_reached_answers_and_the_service_keeps_serving(settings, http_target):
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        missing_secret = RunProbe(probe=HttpProbeSpec(name="app", url=http_target.url("/ok"),
                                                      headers_env={"Authorization": "GOLIVE_TEST_NO_SUCH_VARIABLE"}),
                                  duration_s=0.3)
        await send_run(nc, settings, missing_secret, "cmd-bad")
        [failed] = await events_until(sub, lambda e: True)
        await send_run(nc, settings, RunProbe(probe=HttpProbeSpec(name="app", url="http://127.0.0.1:1/health"),
                                              duration_s=0.3), "cmd-down")
        [down] = await events_until(sub, lambda e: True)
    finally:
        await nc.close()
        await bus.stop()

    assert isinstance(failed.data, CommandFailed) and failed.data.failure == "invalid"
    assert "GOLIVE_TEST_NO_SUCH_VARIABLE" in failed.data.reason
    assert isinstance(down.data, ProbeCompleted) and not down.data.passed
    assert set(down.data.errors_by_class) == {"connection"}


async def test_stop_that_overtakes_its_probe_still_stops_it(settings, http_target):
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        stop = StopProbe(command_id="cmd-late", reason="aborted before the hold began")
        await nc.publish(settings.subjects.stop_probes(RUN),
                         new_envelope(stop, id="stop-early", source="/tests", runid=RUN).to_json())
        await nc.flush()
        await asyncio.sleep(0.3)  # the stop is heard before the probe's command is
        hold = RunProbe(probe=HttpProbeSpec(name="app_health", url=http_target.url("/ok")), duration_s=600)
        await send_run(nc, settings, hold, "cmd-late")
        [completed] = await events_until(sub, lambda e: isinstance(e.data, ProbeCompleted), timeout_s=20)
    finally:
        await nc.close()
        await bus.stop()
    assert completed.data.stopped and "aborted before the hold began" in completed.data.stopped
