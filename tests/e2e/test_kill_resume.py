"""kill -9 of the coordinator in every phase of a run: a new coordinator takes the run over once the dead
one's lease expires, the run ends as it would have without the kill, and no command ran twice (counted at
the services: their own logs of work done, the migrator's history table, the dry-run provider's file).

One stack of services serves every case (each case its own run id, deployment and index), to stay short.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.service_processes import DATABASE_ENV, WEBHOOK_ENV, ServiceProcesses, service_env, wait_until_ready
from golive.stack.webhook_sink import WebhookSink
from tests.builders import skeleton_plan
from tests.harness import read_until, start_run

pytestmark = pytest.mark.e2e

LEASE_TTL_S = 3
TEMPLATE_DB = "golive_test_template"  # the seeded template tests/conftest.py prepares


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    database_url: str
    procs: ServiceProcesses
    logs: Path
    coordinator: str = "coordinator"  # the key of the coordinator process alive now


@pytest.fixture(scope="module")
def stack(nats_url, postgres_admin_url, tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    settings = Settings(nats_url=nats_url, subject_root=f"t{secrets.token_hex(5)}", state_dir=base / "state",
                        artifacts_dir=base / "artifacts")
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    database_url = psycopg.conninfo.make_conninfo(postgres_admin_url, dbname=name)
    with WebhookSink() as webhook:
        env = service_env(nats_url, settings.state_dir, {
            "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir),
            "GOLIVE_LEASE_TTL_S": str(LEASE_TTL_S), DATABASE_ENV: database_url, WEBHOOK_ENV: webhook.url,
        })
        procs = ServiceProcesses(env, base / "logs").start()
        try:
            asyncio.run(wait_until_ready(settings, SERVICES, procs))
            yield Stack(settings, env, database_url, procs, base / "logs")
        finally:
            procs.stop()
            with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# phase -> (when to kill: the first event it matches, the plan fails stage 2's hold, outcome)
PHASES = {
    "migrate": (lambda e: _step(e) == "migrate", False, "succeeded"),
    "smoke": (lambda e: _step(e).startswith("smoke:"), False, "succeeded"),
    "canary_shift": (lambda e: _step(e) == "stage2:shift:50", False, "succeeded"),
    "mid_hold": (lambda e: _step(e) == "stage1:hold", False, "succeeded"),
    "compensating": (lambda e: e["type"] == "golive.coordinator.compensation_started.v1", True, "rolled_back"),
}


def _step(event: dict) -> str:
    return event["data"].get("step", "") if event["type"] == "golive.coordinator.phase_started.v1" else ""


@pytest.mark.parametrize("phase", list(PHASES))
def test_coordinator_killed_in_each_phase_the_run_ends_the_same_and_no_command_runs_twice(stack, phase, tmp_path):
    kill_when, fail_stage2, outcome = PHASES[phase]
    run_id, deployment, index = f"kill-{phase.replace('_', '-')}", f"dpl-{phase.replace('_', '-')}", f"idx_kill_{phase}"

    def edit(plan: dict) -> None:
        plan["migrations"]["statements"] = [
            {"name": index, "sql": f"CREATE INDEX CONCURRENTLY {index} ON stripe_events(created_at)"}]
        plan["smoke"][0]["thresholds"]["p95_ms"] = 400  # cases share 2 busy cores: this is about the kill
        if fail_stage2:  # no request answers in 1 microsecond: stage 2's hold fails and the run rolls back
            plan["canary"]["stages"][1]["checks"][0]["thresholds"]["p95_ms"] = 0.001

    plan = skeleton_plan(tmp_path, hold="0.5s", smoke="0.5s", edit=edit)
    run = start_run(plan, run_id, stack.env, "--json", "--deploy-id", deployment, "--previous-deploy-id", "dpl-stable")
    try:
        seen = read_until(run, kill_when)
        dead = stack.procs.procs[stack.coordinator]
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        stack.coordinator = f"coordinator-after-{phase}"
        stack.procs.start_one("coordinator", f"-after-{phase}")
        out, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
    events = seen + [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e["data"] for e in events if e["type"] == "golive.coordinator.run_finished.v1"]
    assert [f["outcome"] for f in finished] == [outcome], err
    assert run.returncode == (0 if outcome == "succeeded" else 1)

    done = commands_done(stack.logs, run_id)
    assert done and all(n == 1 for n in done.values()), done  # every command executed exactly once
    shifts = [c for c in done if ":shift:" in c and ".undo." not in c]
    builds = history(stack.database_url, run_id)
    weight = json.loads((stack.settings.state_dir / "traffic-dry-run.json").read_text())[deployment]["weight"]
    if outcome == "succeeded":
        assert len(shifts) == 3 and builds == [("apply", "built")] and weight == 100
    else:
        undos = [c for c in done if ".undo." in c]
        assert len(shifts) == 2 and len(undos) == 2  # stage 1 and 2 shifted; traffic and index undone once each
        assert builds == [("apply", "built"), ("revert", "dropped")] and weight == 0
    log = (stack.logs / f"{stack.coordinator}.log").read_text()
    assert "lease.acquired" in log and "run.replayed" in log  # the new coordinator took the run over
    print(f"phase {phase}: outcome {outcome}; commands executed {sum(done.values())} "
          f"(distinct {len(done)}), shifts {len(shifts)}, migrator history {builds}, final weight {weight}")



def commands_done(log_dir: Path, run_id: str) -> Counter:
    """Commands of ``run_id`` the services finished, by command id, from their own logs."""
    done: Counter = Counter()
    for name in ("migrator", "prober", "traffic"):
        for line in (log_dir / f"{name}.log").read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("event") == "command.done" and entry.get("run_id") == run_id:
                done[entry["command_id"]] += 1
    return done


def history(database_url: str, run_id: str) -> list[tuple[str, str]]:
    """The migrator's history rows of the run: (operation, action), oldest first."""
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT operation, action FROM golive_migrations WHERE run_id = %s AND status = 'succeeded' ORDER BY id",
            (run_id,))]
