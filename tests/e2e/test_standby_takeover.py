"""A standby coordinator takes over a run whose coordinator died, without waiting for an event of that run.

The run waits at an approval gate when its coordinator is killed, after it handled every event of the run: nothing
of that run reaches the event stream until someone approves (the notifier is frozen, so not even its reports), and
a coordinator woken only by events would never drive the gate's timeout: the run would wait forever. The standby,
started after the kill, finds the run in the active-runs bucket once the dead one's lease has expired, takes it
over, and the gate times out into a rollback as it would have without the kill."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.builders import skeleton_plan
from tests.harness import start_run

pytestmark = pytest.mark.e2e


def test_a_standby_takes_over_a_run_waiting_at_a_gate_and_drives_its_timeout(services, process_env, tmp_path):
    def edit(plan: dict) -> None:
        plan["canary"]["stages"][1]["approval"] = True  # nobody approves: the gate times out into a rollback
        plan["timeouts"] = {"step": "5s", "approval": "12s"}  # lease TTL in tests: 4 s; room to take over

    notifier = services.procs["notifier"]
    notifier.send_signal(signal.SIGSTOP)  # no event of the run but the coordinator's own and the answers
    plan = skeleton_plan(tmp_path, hold="1s", smoke="1s", edit=edit)
    run = start_run(plan, "standby-run", process_env, "--json")
    try:
        events = []
        while not events or not (events[-1]["type"] == "golive.coordinator.phase_started.v1"
                                 and events[-1]["data"]["step"] == "stage2:gate"):
            line = run.stdout.readline()
            assert line, f"the run ended before its gate: {events}"
            if line.startswith("{"):
                events.append(json.loads(line))
        time.sleep(1.0)  # the coordinator handles its own last event (the gate's start) and acks it
        coordinator = services.procs["coordinator"]
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(10)
        services.start_one("coordinator", "-standby")  # nothing of the run is pending for it to wake on
        out, err = run.communicate(timeout=120)
    finally:
        notifier.send_signal(signal.SIGCONT)
        if run.poll() is None:
            run.kill()
    events += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e["data"]["outcome"] for e in events if e["type"] == "golive.coordinator.run_finished.v1"]
    assert finished == ["rolled_back"], err
    [failed] = [e["data"] for e in events if e["type"] == "golive.coordinator.step_failed.v1"]
    assert failed["step"] == "stage2:gate", failed
    log = [json.loads(line) for line in (tmp_path / "logs" / "coordinator-standby.log").read_text().splitlines()
           if line.startswith("{")]
    assert any(entry.get("event") == "run.adopted" and entry.get("run_id") == "standby-run" for entry in log)
