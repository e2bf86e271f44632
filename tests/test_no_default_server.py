"""No silent default server: without GOLIVE_NATS_URL and without a running embedded stack's file, every command
that needs the bus exits 4 at once with one line saying how to get one. It never tries 127.0.0.1:4222, where on a
shared machine someone else's NATS may listen (golive would create its streams there and wait on it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from golive.plans import SKELETON

BUS_COMMANDS = [
    ("run", str(SKELETON), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old"),
    ("events",),
    ("status",),
    ("status", "run-x"),
    ("watch",),
    ("approve", "run-x"),
    ("abort", "run-x", "--reason", "test"),
    ("pause", "run-x", "--reason", "test"),
    ("continue", "run-x"),
    ("retry", "run-x"),
    ("resume", "run-x", "--no-wait"),
    ("report", "run-x"),
    ("serve", "coordinator"),
]


def _env_without_bus(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_") and not k.startswith("NATS_")}
    return {**env, "GOLIVE_STATE_DIR": str(tmp_path / "state"), "GOLIVE_ARTIFACTS_DIR": str(tmp_path / "artifacts")}


@pytest.mark.parametrize("args", BUS_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_without_a_bus_address_exits_4_with_one_line(tmp_path, args):
    result = subprocess.run([sys.executable, "-m", "golive", *args], env=_env_without_bus(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    reasons = [line for line in result.stderr.splitlines() if "NATS" in line]
    assert len(reasons) == 1, result.stderr  # `golive run` names the run first; then one line, no traceback
    assert "no NATS address" in reasons[0] and "GOLIVE_NATS_URL" in reasons[0] and "golive up" in reasons[0]
    assert "4222" not in result.stdout + result.stderr


def test_run_without_a_coordinator_exits_4_and_its_start_never_runs_later(settings, process_env, tmp_path):
    """A bus but no coordinator: `golive run` gives up after the start timeout with exit 4 and one line, and a
    coordinator that comes up later refuses the expired start instead of starting a go-live nobody watches."""
    import asyncio
    from contextlib import aclosing

    import nats

    from golive.shared.event_log import read_events
    from golive.shared.events import CommandFailed, RunStarted
    from golive.stack.service_processes import ServiceProcesses, wait_until_ready
    from tests.harness import run_cli

    env = {**process_env, "GOLIVE_START_TIMEOUT_S": "2"}
    result = run_cli("run", str(SKELETON), "--run-id", "run-nobody", env=env, timeout_s=60)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [reason] = [line for line in result.stderr.splitlines() if "coordinator" in line]
    assert "no coordinator accepted run run-nobody within 2 s" in reason and "will not run later" in reason

    procs = ServiceProcesses(env, tmp_path / "logs").start(("coordinator",))
    try:
        asyncio.run(wait_until_ready(settings, ("coordinator",), procs))

        async def events() -> list:
            nc = await nats.connect(settings.resolved_nats_url())
            try:
                for _ in range(100):
                    async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run("run-nobody"))) as feed:
                        seen = [e async for _seq, e in feed]
                    if seen:
                        return seen
                    await asyncio.sleep(0.1)
                return []
            finally:
                await nc.close()

        seen = asyncio.run(events())
    finally:
        procs.stop()
    assert [type(e.data) for e in seen] == [CommandFailed] and "expired" in seen[0].data.reason
    assert not any(isinstance(e.data, RunStarted) for e in seen)
