"""One driver per run: the lease in the KV bucket, two coordinators on one run, and a coordinator that
stopped renewing (SIGSTOP) losing its run to another and not driving it when it wakes up."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from golive.services.coordinator.lease import LeaseHeld, LeaseLost, Leases
from tests.builders import skeleton_plan
from tests.harness import REPO, golive_popen, run_cli, start_run, wait_for_output

pytestmark = pytest.mark.e2e


def test_a_lease_is_taken_once_renewed_by_its_holder_only_and_taken_over_after_it_expires(settings):
    async def scenario() -> None:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            js = nc.jetstream()
            a = await Leases.open(js, settings.subject_root, ttl_s=1.0, owner="host-a:1:aaa")
            b = await Leases.open(js, settings.subject_root, ttl_s=1.0, owner="host-b:2:bbb")
            mine = await a.acquire("run-1")
            with pytest.raises(LeaseHeld) as held:
                await b.acquire("run-1")
            assert held.value.lease.owner == "host-a:1:aaa"
            mine = await a.renew(mine)
            await asyncio.sleep(1.5)  # a stops renewing: the bucket's TTL removes its key
            theirs = await b.acquire("run-1")
            with pytest.raises(LeaseLost):
                await a.renew(mine)  # the compare-and-set on a's last revision fails: a must drop the run
            assert (await a.holder("run-1")).owner == "host-b:2:bbb"
            await b.release(theirs)
            assert await a.holder("run-1") is None
            await a.release(mine)  # a stale release deletes nothing
            assert (await a.acquire("run-1")).owner == "host-a:1:aaa"
        finally:
            await nc.close()

    asyncio.run(scenario())


def resume(run_id: str, env: dict[str, str], *args: str) -> subprocess.Popen:
    return golive_popen([sys.executable, "-m", "golive", "resume", run_id, *args], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def gated(plan: dict) -> None:
    plan["canary"]["stages"][1]["approval"] = True  # the run waits at stage 2 until `golive approve`


def test_a_second_coordinator_on_a_driven_run_waits_and_says_who_drives_it(services, process_env, tmp_path):
    run = start_run(skeleton_plan(tmp_path, hold="1s", edit=gated), "run-two", process_env)
    waiting = None
    try:
        wait_for_output(run, "stage2:gate")  # the service coordinator drives the run, which waits at the gate
        refused = run_cli("resume", "run-two", "--no-wait", env=process_env)
        waiting = resume("run-two", process_env)
        said = wait_for_output(waiting, "is driven by", stream="stderr")
        assert run_cli("approve", "run-two", "--stage", "2", env=process_env).returncode == 0
        out, err = run.communicate(timeout=90)
        # a bound on a hung process, not a speed limit: a loaded machine draws the run's report slowly
        waiting_out, waiting_err = waiting.communicate(timeout=90)
    finally:
        for proc in (run, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert refused.returncode == 2
    assert "run run-two is driven by " in refused.stderr and "; waiting for it to end or expire" in refused.stderr
    assert "run run-two is driven by " in said
    assert run.returncode == 0 and "run succeeded" in out, out + err
    # the waiting one saw the run's end: it exits with the run's code, having driven none of it
    assert waiting.returncode == 0 and "run succeeded" in waiting_out, waiting_err
    assert "driving it from here" not in waiting_err
    assert all(n == 1 for n in commands_done(tmp_path / "logs", "run-two").values())

    unknown = run_cli("resume", "no-such-run", env=process_env)
    assert unknown.returncode == 2 and "no run no-such-run" in unknown.stderr
    ended = run_cli("resume", "run-two", env=process_env)
    assert ended.returncode == 2 and "run run-two already ended: succeeded" in ended.stderr


def test_a_frozen_coordinator_loses_its_run_after_the_ttl_and_does_not_drive_it_when_it_wakes(
        services, process_env, tmp_path):
    run = start_run(skeleton_plan(tmp_path, hold="1s", edit=gated), "run-frozen", process_env)
    coordinator, log = services.procs["coordinator"], tmp_path / "logs" / "coordinator.log"
    taker = None
    try:
        wait_for_output(run, "stage2:gate")
        taker = resume("run-frozen", process_env)
        said = wait_for_output(taker, "is driven by", stream="stderr")
        coordinator.send_signal(signal.SIGSTOP)  # stops renewing; its lease runs out after the TTL
        said += wait_for_output(taker, "driving it from here", stream="stderr")
        coordinator.send_signal(signal.SIGCONT)
        _wait_for_log(log, "lease.lost")  # woken up, its renewal's compare-and-set fails
        # the approval is recorded by the coordinator service (it takes the commands), applied by the taker
        assert run_cli("approve", "run-frozen", "--stage", "2", env=process_env).returncode == 0
        out, err = run.communicate(timeout=90)
        # the taker drives the run to its end and draws its report before it exits: a bound, not a speed limit
        taker_out, taker_err = taker.communicate(timeout=90)
    finally:
        coordinator.send_signal(signal.SIGCONT)
        for proc in (run, taker):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert "run run-frozen is driven by " in said
    assert run.returncode == 0 and "run succeeded" in out, out + err
    assert taker.returncode == 0 and "run succeeded" in taker_out, taker_err
    assert all(n == 1 for n in commands_done(tmp_path / "logs", "run-frozen").values())
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    lost = next(i for i, e in enumerate(lines) if e.get("event") == "lease.lost" and e.get("run_id") == "run-frozen")
    assert not [e for e in lines[lost:] if e.get("event") == "run.decided" and e.get("run_id") == "run-frozen"]


def _wait_for_log(path: Path, text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text} not in {path.name}"
        time.sleep(0.2)


def commands_done(log_dir: Path, run_id: str) -> Counter:
    """Commands of ``run_id`` the services finished, by command id, from their own logs."""
    done: Counter = Counter()
    for name in ("migrator", "prober", "traffic"):
        for line in (log_dir / f"{name}.log").read_text().splitlines():
            if line.startswith("{") and (entry := json.loads(line)).get("event") == "command.done" \
                    and entry.get("run_id") == run_id:
                done[entry["command_id"]] += 1
    assert done, f"no command of {run_id} in the services' logs"
    return done
