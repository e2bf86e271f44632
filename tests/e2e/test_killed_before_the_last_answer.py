"""A coordinator killed after sending a run's last command and before handling its answer: the coordinator that
takes the run over applies that answer and ends the run (run_finished, the final message, the artifacts), and
`golive run` exits with the run's code. A run is over only when its run_finished is in the history.

The kill lands exactly there every time: the service that will answer the last command is frozen (SIGSTOP) while
it is idle, the coordinator is killed once it has sent that command, and only then does the service go on."""

from __future__ import annotations

import json
import signal

import pytest

from tests.builders import skeleton_plan
from tests.harness import read_until, run_cli, start_run

pytestmark = pytest.mark.e2e

# case -> (the service that answers the last command, when to freeze it, when to kill the coordinator, outcome)
CASES = {
    "promote": ("traffic", lambda e: _step(e) == "stage3:hold", lambda e: _step(e) == "lock_in:promote",
                "succeeded"),
    "last_compensation": ("migrator", lambda e: e["type"] == "golive.coordinator.step_failed.v1",
                          lambda e: e["type"] == "golive.coordinator.compensation_started.v1"
                          and e["data"].get("undoes") == "migrate", "rolled_back"),
}


def _step(event: dict) -> str:
    return event["data"].get("step", "") if event["type"] == "golive.coordinator.phase_started.v1" else ""


@pytest.mark.parametrize("case", list(CASES))
def test_the_run_ends_when_its_coordinator_died_before_handling_the_last_answer(services, process_env, settings,
                                                                                  tmp_path, case):
    answerer, freeze_when, kill_when, outcome = CASES[case]

    def edit(plan: dict) -> None:
        plan["canary"]["stages"][2]["hold"] = "3s"  # room to freeze the traffic service before the promote
        plan["lock_in"] = {"promote": True}  # the runbook's last step: promote the canary to production
        if outcome == "rolled_back":  # nothing answers in 1 microsecond: stage 2 fails and the run rolls back
            plan["canary"]["stages"][1]["checks"][0]["thresholds"]["p95_ms"] = 0.001

    plan = skeleton_plan(tmp_path, hold="1s", smoke="1s", edit=edit)
    run_id = f"end-{case.replace('_', '-')}"
    run = start_run(plan, run_id, process_env, "--json")
    frozen = services.procs[answerer]
    try:
        seen = read_until(run, freeze_when)
        frozen.send_signal(signal.SIGSTOP)  # idle now: the last command will wait for it
        seen += read_until(run, kill_when)  # the coordinator has sent the last command
        coordinator = services.procs["coordinator"]
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(10)
        frozen.send_signal(signal.SIGCONT)  # it answers; no coordinator is there to handle the answer
        services.start_one("coordinator", "-after")  # takes the run over once the dead one's lease expires
        out, err = run.communicate(timeout=120)
    finally:
        frozen.send_signal(signal.SIGCONT)
        if run.poll() is None:
            run.kill()
    events = seen + [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e["data"]["outcome"] for e in events if e["type"] == "golive.coordinator.run_finished.v1"]
    assert finished == [outcome], err
    assert run.returncode == (0 if outcome == "succeeded" else 1)
    status = run_cli("status", env=process_env)
    assert run_id in status.stdout and outcome in status.stdout.split(run_id, 1)[1].splitlines()[0], status.stdout
    assert (settings.artifacts_dir / run_id / "report.json").exists()
    log = (tmp_path / "logs" / "coordinator-after.log").read_text()
    assert "lease.acquired" in log
