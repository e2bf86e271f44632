"""A canary stage's hold as one RunProbes on a real bus: several probes on one clock, every window under the
set's command id, one StopProbe ends them all, one answer with the failing probe first; a probe that cannot
start fails the whole set the way a RunProbe does."""

from __future__ import annotations

import nats

from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, RunProbes, SqlProbeSpec, StopProbe, Thresholds
from golive.shared.envelope import new_envelope
from golive.shared.events import CommandFailed, ProbesCompleted, ProbeWindow
from tests.prober.conftest import DB_ENV
from tests.prober.prober_bus import RUN, events_until, send_run, started_prober


def check(probe, **kw) -> RunProbe:
    # the inner duration is overridden by the set's
    return RunProbe(probe=probe, duration_s=1, load=LoadSpec(mode="open", rate=20), window_s=0.5, **kw)


async def test_hold_runs_its_probes_together_publishes_their_windows_and_stops_all_on_one_request(
        settings, http_target, database_url, monkeypatch):
    monkeypatch.setenv(DB_ENV, database_url)
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        hold = RunProbes(label="stage 1 (10%)", duration_s=600, probes=[
            check(SqlProbeSpec(name="signup_exists", database_url_env=DB_ENV, query="SELECT 1")),
            check(HttpProbeSpec(name="app_errors", url=http_target.url("/status/503")), thresholds=Thresholds(error_rate_pct=1)),
        ])
        await send_run(nc, settings, hold, "cmd-hold")
        seen = await events_until(sub, lambda e: isinstance(e.data, ProbeWindow) and e.data.index == 1
                                  and e.data.probe == "app_errors")
        await nc.publish(settings.subjects.stop_probes(RUN),
                         new_envelope(StopProbe(command_id="cmd-hold", reason="the operator ended the hold"),
                                      id="stop-1", source="/tests", runid=RUN).to_json())
        seen += await events_until(sub, lambda e: isinstance(e.data, ProbesCompleted))
    finally:
        await nc.close()
        await bus.stop()

    windows = [e for e in seen if isinstance(e.data, ProbeWindow)]
    assert {w.data.command_id for w in windows} == {"cmd-hold"} and all(w.correlationid is None for w in windows)
    assert all(w.id == f"cmd-hold/window/{w.data.probe}/probe/{w.data.index}" for w in windows)
    by_probe = {name: [w.data.index for w in windows if w.data.probe == name] for name in ("signup_exists", "app_errors")}
    assert by_probe["signup_exists"][:2] == [0, 1] and by_probe["app_errors"][:2] == [0, 1]
    assert all(w.data.label == "stage 1 (10%)" for w in windows)

    answer = seen[-1]
    assert answer.correlationid == "cmd-hold"
    done = answer.data
    assert done.stopped and "the operator ended the hold" in done.stopped
    assert [r.probe for r in done.results] == ["signup_exists", "app_errors"]
    assert all(r.stopped and r.count + r.errors >= 20 for r in done.results)  # both ran, not the 600 s
    assert not done.passed and done.results[0].passed and not done.results[1].passed
    assert done.summary.startswith("1 of 2 probes failed; app_errors:")
    assert done.summary.index("app_errors") < done.summary.index("signup_exists")


async def test_hold_with_a_probe_that_cannot_start_or_two_of_one_name_fails_as_a_command(settings, http_target):
    bus = await started_prober(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        sub = await nc.jetstream().subscribe(settings.subjects.events_of_run(RUN), ordered_consumer=True)
        hold = RunProbes(duration_s=600, probes=[
            check(HttpProbeSpec(name="app_health", url=http_target.url("/ok"))),
            check(SqlProbeSpec(name="signup_exists", database_url_env="GOLIVE_TEST_NO_SUCH_VARIABLE", query="SELECT 1")),
        ])
        await send_run(nc, settings, hold, "cmd-bad")
        [failed] = await events_until(sub, lambda e: True)
        twice = RunProbes(duration_s=600, probes=[check(HttpProbeSpec(name="app_health", url=http_target.url("/ok")))] * 2)
        await send_run(nc, settings, twice, "cmd-twice")
        [same_name] = await events_until(sub, lambda e: True)
    finally:
        await nc.close()
        await bus.stop()

    assert isinstance(failed.data, CommandFailed) and failed.data.failure == "invalid"
    assert failed.correlationid == "cmd-bad"
    assert "signup_exists" in failed.data.reason and "GOLIVE_TEST_NO_SUCH_VARIABLE" in failed.data.reason
    assert isinstance(same_name.data, CommandFailed) and same_name.data.failure == "invalid"
    assert "app_health appear more than once" in same_name.data.reason
