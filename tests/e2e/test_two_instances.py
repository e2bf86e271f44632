"""Two instances of every service, and kill -9 of one of each kind in the middle of a run (issue 14, finding 7).

Ten service processes on the real broker and database: the five of the ``services`` fixture and a second of each
with a state dir of its own (as on another host). The dry-run provider's file is the production routing they share,
by design. At the first stage's hold, one of each kind dies: the coordinator holding the run's lease, the prober
running the hold, the traffic instance that made the first shift, the migrator that built the index, and a
notifier. The run ends as it would have without the kills: its outcome, the weights read back from the provider's
file, the index built or dropped; no command was executed twice (the services' own logs of work done, both
instances of each), and every Slack message arrived exactly once at the webhook receiver.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.service_processes import ServiceProcesses
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import index_state
from tests.harness import read_until, start_run

pytestmark = pytest.mark.e2e

WORKERS = ("migrator", "prober", "traffic")


def log_entries(log_dir: Path, key: str) -> list[dict]:
    path = log_dir / f"{key}.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def instances(name: str) -> tuple[str, str]:
    return name, f"{name}-b"


def commands_done(log_dir: Path, run_id: str) -> Counter:
    """Commands of ``run_id`` finished by any instance of the worker services, by command id, from their logs."""
    done: Counter = Counter()
    for name in WORKERS:
        for key in instances(name):
            done.update(e["command_id"] for e in log_entries(log_dir, key)
                        if e.get("event") == "command.done" and e.get("run_id") == run_id)
    return done


def wait_for_instance(log_dir: Path, name: str, found, what: str, timeout_s: float = 30.0) -> str:
    """The instance of ``name`` whose log entries satisfy ``found(entries)`` (polled: logs are written as work goes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        matches = [key for key in instances(name) if found(log_entries(log_dir, key))]
        if len(matches) == 1:
            return matches[0]
        time.sleep(0.05)
    raise AssertionError(f"no single {name} instance {what} (logs in {log_dir})")


def holds_lease(run_id: str):
    return lambda entries: any(e.get("event") == "lease.acquired" and e.get("run_id") == run_id for e in entries)


def working_on(run_id: str):
    """An instance that received a command of the run and has not finished it."""
    def found(entries: list[dict]) -> bool:
        mine = [e for e in entries if e.get("run_id") == run_id]
        received = {e["command_id"] for e in mine if e.get("event") == "command.received"}
        return bool(received - {e["command_id"] for e in mine if e.get("event") in ("command.done", "command.failed")})
    return found


def did(run_id: str, fragment: str):
    return lambda entries: any(e.get("event") == "command.done" and e.get("run_id") == run_id
                               and fragment in e.get("command_id", "") for e in entries)


async def notifier_caught_up(settings: Settings) -> None:
    """Wait until the notifiers' shared consumer has every event delivered and acknowledged (the notifier acks an
    event only once its messages are recorded as delivered): no message can arrive after this."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        for _ in range(1_800):
            info = await js.consumer_info(settings.subjects.event_stream, "notifier-events")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the notifiers never caught up: {info}")
    finally:
        await nc.close()


@pytest.mark.parametrize("outcome", ["succeeded", "rolled_back"])
def test_one_instance_of_each_service_killed_mid_run_the_run_ends_right_once(
        services, settings, process_env, database_url, webhook, tmp_path, outcome):
    run_id, index = f"two-{outcome.replace('_', '-')}", f"idx_two_{outcome}"
    weights = tmp_path / "production-weights.json"  # the routing every traffic instance shifts

    def edit(plan: dict) -> None:
        plan["traffic"]["provider"]["state_file"] = str(weights)
        plan["migrations"]["statements"] = [
            {"name": index, "sql": f"CREATE INDEX CONCURRENTLY {index} ON stripe_events(created_at)"}]
        plan["smoke"][0]["thresholds"]["p95_ms"] = 400  # ten services on two busy cores: this is about the kills
        if outcome == "rolled_back":  # no request answers in 1 microsecond: stage 2's hold fails
            plan["canary"]["stages"][1]["checks"][0]["thresholds"]["p95_ms"] = 0.001

    log_dir = services.log_dir
    second = ServiceProcesses({**process_env, "GOLIVE_STATE_DIR": str(tmp_path / "state-b")}, log_dir)
    plan = skeleton_plan(tmp_path, hold="4s", smoke="1s", edit=edit)
    try:
        for name in SERVICES:
            second.start_one(name, "-b")
        run = start_run(plan, run_id, process_env, "--json", "--deploy-id", "dpl-two", "--previous-deploy-id",
                        "dpl-old")
        try:
            seen = read_until(run, lambda e: e["type"] == "golive.coordinator.phase_started.v1"
                              and e["data"].get("step") == "stage1:hold")
            victims = {
                "coordinator": wait_for_instance(log_dir, "coordinator", holds_lease(run_id), "holds the lease"),
                "prober": wait_for_instance(log_dir, "prober", working_on(run_id), "runs the hold"),
                "traffic": wait_for_instance(log_dir, "traffic", did(run_id, ":shift:"), "made the first shift"),
                "migrator": wait_for_instance(log_dir, "migrator", did(run_id, ""), "built the index"),
                "notifier": "notifier",
            }
            procs = {**services.procs, **second.procs}
            for key in victims.values():
                procs[key].send_signal(signal.SIGKILL)
            for key in victims.values():
                procs[key].wait(10)
            out, err = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
        asyncio.run(notifier_caught_up(settings))
    finally:
        second.stop()

    events = seen + [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e["data"]["outcome"] for e in events if e["type"] == "golive.coordinator.run_finished.v1"]
    assert finished == [outcome], err
    assert run.returncode == (0 if outcome == "succeeded" else 1)
    assert all(procs[key].returncode == -signal.SIGKILL for key in victims.values()), victims

    # the end state, read back: traffic from the provider's file, the index from the catalog
    weight = json.loads(weights.read_text())["dpl-two"]["weight"]
    done = commands_done(log_dir, run_id)
    assert done and all(n == 1 for n in done.values()), done  # no command executed twice, across both instances
    shifts = [c for c in done if ":shift:" in c and ".undo." not in c]
    undos = [c for c in done if ".undo." in c]
    if outcome == "succeeded":
        assert weight == 100 and index_state(database_url, index) == (True, True)
        assert len(shifts) == 3 and undos == []
    else:
        assert weight == 0 and index_state(database_url, index) is None
        assert len(shifts) == 2 and len(undos) == 2  # traffic and the index undone once each

    # every Slack message exactly once: none lost to the killed notifier, none sent by both
    texts = [m["text"] for m in webhook.received]
    assert [t for t, n in Counter(texts).items() if n > 1] == [], texts
    assert sum("Starting skeleton" in t for t in texts) == 1, texts
    if outcome == "succeeded":
        assert sum("stage" in t and "passed" in t for t in texts) == 3 and len(texts) == 5, texts
        assert "SUCCESS" in texts[-1], texts
    else:
        assert sum("stage" in t and "passed" in t for t in texts) == 1 and len(texts) == 4, texts
        assert sum("Rollback Triggered" in t for t in texts) == 1 and "rolled back to dpl-old" in texts[-1], texts
    print(f"{outcome}: killed {sorted(victims.values())}; commands executed {sum(done.values())} "
          f"(distinct {len(done)}); final weight {weight}; slack messages {len(texts)}")
    takeover = log_entries(log_dir, "coordinator-b" if victims["coordinator"] == "coordinator" else "coordinator")
    assert any(e.get("run_id") == run_id and e.get("event") in ("lease.acquired", "run.adopted") for e in takeover)
