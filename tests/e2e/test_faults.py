"""Faults with real processes: a service stopped mid-work hands it back; a coordinator killed mid-run is
replaced and the run carries on from the event stream."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import nats
import pytest

from golive.shared.commands import RunProbe, SqlProbeSpec, Thresholds
from golive.shared.envelope import new_envelope, parse_envelope
from golive.shared.events import ProbeCompleted
from golive.stack.service_processes import ServiceProcesses, wait_until_ready
from tests.builders import skeleton_plan
from tests.harness import start_run, wait_for_output

pytestmark = pytest.mark.e2e


def test_prober_stopped_mid_probe_hands_the_work_back_to_another_instance(settings, process_env, tmp_path):
    procs = ServiceProcesses(process_env, tmp_path / "logs")
    try:
        first = procs.start_one("prober", "-1")
        asyncio.run(wait_until_ready(settings, ["prober"], procs))

        async def scenario() -> tuple[float, ProbeCompleted]:
            nc = await nats.connect(settings.resolved_nats_url())
            try:
                js = nc.jetstream()
                subjects = settings.subjects
                command = new_envelope(
                    RunProbe(probe=SqlProbeSpec(name="one", database_url_env="GOLIVE_DATABASE_URL", query="SELECT 1"),
                             duration_s=3, thresholds=Thresholds(p95_ms=100)),
                    id="run-handback.probe", source="/tests", runid="run-handback",
                )
                answers = await js.subscribe(subjects.events_of_run("run-handback"), ordered_consumer=True)
                await js.publish(subjects.command("prober", "run"), command.to_json(), stream=subjects.command_stream,
                                 headers={"Nats-Msg-Id": command.id})
                await asyncio.sleep(1.0)  # the first prober is mid-probe
                stopped_at = time.monotonic()
                first.send_signal(signal.SIGTERM)
                await asyncio.to_thread(first.wait, 20)
                procs.start_one("prober", "-2")
                answer = parse_envelope((await answers.next_msg(timeout=30)).data)
                return time.monotonic() - stopped_at, answer.data
            finally:
                await nc.close()

        elapsed, answer = asyncio.run(scenario())
    finally:
        procs.stop()
    assert first.returncode == 0  # a graceful exit, not a kill
    assert isinstance(answer, ProbeCompleted) and answer.count > 0 and answer.passed
    assert answer.duration_s >= 3.0  # a whole probe by the second instance, not the first one's partial window
    assert elapsed < 25  # handed back at once, not after ack_wait
    assert "command.handed_back" in (tmp_path / "logs" / "prober-1.log").read_text()
    assert "command.done" in (tmp_path / "logs" / "prober-2.log").read_text()


def test_coordinator_killed_mid_run_is_replaced_and_the_run_finishes(services, settings, process_env, tmp_path):
    run = start_run(skeleton_plan(tmp_path, hold="2s"), "run-kill", process_env)
    try:
        seen = wait_for_output(run, "stage1:hold")  # the canary's first hold runs
        coordinator = services.procs["coordinator"]
        coordinator.kill()  # SIGKILL: no graceful anything
        coordinator.wait(10)
        services.start_one("coordinator")
        out, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, seen + out + err
    assert "run succeeded" in out
    log = (tmp_path / "logs" / "coordinator.log").read_text()
    assert "run.replayed" in log


def test_two_coordinators_share_the_runs_and_each_run_still_ends_right(services, settings, process_env, tmp_path):
    services.start_one("coordinator", "-2")
    asyncio.run(wait_until_ready(settings, ["coordinator"], services))
    def lenient_smoke(plan: dict) -> None:
        plan["smoke"][0]["thresholds"]["p95_ms"] = 400  # three runs at once on 2 cores: this test is about coordination

    path = skeleton_plan(tmp_path, hold="0.5s", smoke="0.5s", edit=lenient_smoke)
    runs = [start_run(path, f"run-pair-{i}", process_env, "--deploy-id", f"dpl_{i}") for i in range(3)]
    results = [r.communicate(timeout=120) for r in runs]
    assert [r.returncode for r in runs] == [0, 0, 0], results
    logs = [(tmp_path / "logs" / name).read_text() for name in ("coordinator.log", "coordinator-2.log")]
    # one driver per run (its lease): together they drove every run, each run by one of them
    driven = [{e["run_id"] for e in map(json.loads, (line for line in log.splitlines() if line.startswith("{")))
               if e.get("event") == "run.decided"} for log in logs]
    assert driven[0] | driven[1] == {f"run-pair-{i}" for i in range(3)} and not driven[0] & driven[1], driven
