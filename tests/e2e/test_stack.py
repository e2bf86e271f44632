"""`golive up` as a user runs it: one terminal starts the stack, another runs a plan and reads its events;
Ctrl-C stops everything and leaves nothing running. And each service exposes its metrics. Both terminals are in a
directory outside the repository: the stack and the plan it names need none of its files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from golive.demo.prometheus import prometheus_binary
from golive.plans import SKELETON
from tests.harness import run_cli

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.fixture
def state():
    # not under pytest's basetemp, which another pytest session may reset to mode 0700 under the server
    root = Path(tempfile.mkdtemp(prefix="golive-up-test-"))
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def elsewhere(state):
    """A working directory outside the repository, for both terminals."""
    folder = state.parent / "home"
    folder.mkdir()
    return folder


def test_up_then_run_then_events_then_ctrl_c_leaves_nothing_running(state, elsewhere):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}
    env["GOLIVE_STATE_DIR"] = str(state)
    up = subprocess.Popen([sys.executable, "-m", "golive", "up"], env=env, cwd=elsewhere, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (state / "stack.json").exists():
            assert up.poll() is None, up.stdout.read()
            assert time.monotonic() < deadline, "golive up did not become ready"
            time.sleep(0.2)
        stack = json.loads((state / "stack.json").read_text())

        # the other terminal finds the stack through the state directory alone
        result = run_cli("run", str(SKELETON), "--run-id", "run-up", env=env, timeout_s=120, cwd=elsewhere)
        assert result.returncode == 0, result.stdout + result.stderr
        events = run_cli("events", "--run", "run-up", "--json", env=env, cwd=elsewhere)
        lines = [json.loads(line) for line in events.stdout.splitlines()]
        assert lines[0]["type"] == "golive.coordinator.run_started.v1"
        assert lines[-1]["type"] in {"golive.coordinator.run_finished.v1", "golive.notifier.notification_sent.v1"}
        assert all(e["specversion"] == "1.0" and e["runid"] == "run-up" for e in lines)

        metrics = httpx.get(f"http://127.0.0.1:{stack['metrics']['migrator']}/metrics").text
        assert 'golive_commands_total{outcome="done",service="migrator",type="golive.cmd.migrator.apply.v1"} 1.0' in metrics
        assert "faststream_received_messages_total" in metrics

        # a crashed service is started again; the stack stays up, says so and counts it
        os.kill(stack["pids"]["traffic"], signal.SIGKILL)
        while (restarted := json.loads((state / "stack.json").read_text()))["pids"]["traffic"] == stack["pids"]["traffic"]:
            assert up.poll() is None and time.monotonic() < deadline + 120, "traffic was not restarted"
            time.sleep(0.2)
        assert _alive(restarted["pids"]["traffic"])
        stack_metrics = httpx.get(f"http://127.0.0.1:{stack['stack_metrics']}/metrics").text
        assert 'golive_stack_service_restarts_total{service="traffic"} 1.0' in stack_metrics
        again = run_cli("run", str(SKELETON), "--run-id", "run-up-again", "--deploy-id", "dpl-second",
                        env=env, timeout_s=120, cwd=elsewhere)
        assert again.returncode == 0, again.stdout + again.stderr  # the restarted traffic service shifts again
        stack = restarted
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    # Prometheus is Debian's binary (`make test` installs it): started when found, and said so when not
    prometheus = "Prometheus, " if prometheus_binary() else ""
    assert ("stack stopped on Ctrl-C: nats-server, PostgreSQL, the streaming replica, the Slack stand-in, the demo app "
            f"(stable), the demo app (canary), Envoy, {prometheus}the 5 services; data and logs kept in ") in output, output
    if prometheus:
        assert f"prometheus {stack['prometheus']} (in $GOLIVE_PROMETHEUS_URL) scraping both deployments" in output
    else:
        assert "prometheus not found, so the runbook's user_traffic check is skipped" in output and not stack["prometheus"]
    assert f"`golive run {SKELETON}`" in output  # what it tells the other terminal to run: golive's own plan
    assert "traffic exited with code -9; restarting it" in output and "traffic restarted: pid" in output
    children = list(stack["pids"].values())
    assert not [pid for pid in children if _alive(pid)], "services still running after Ctrl-C"
    assert not (state / "stack.json").exists()
    nats_port = int(stack["nats_url"].rsplit(":", 1)[1])
    for port in (nats_port, stack["postgres_port"]):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on {port}"


def test_ctrl_c_while_the_stack_starts_stops_what_started_says_so_and_exits_0(state, elsewhere):
    """Ctrl-C from a terminal reaches the whole foreground process group, children included, at any moment: here
    as the replica is being copied, right after the seeding. The start ends there; nothing more starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}
    env["GOLIVE_STATE_DIR"] = str(state)
    up = subprocess.Popen([sys.executable, "-m", "golive", "up"], env=env, cwd=elsewhere, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        seen = ""
        while "seeded" not in seen:
            line = up.stdout.readline()
            assert line, seen
            seen += line
        os.killpg(up.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        output, _ = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
    output = seen + output
    assert up.returncode == 0, output
    assert "Ctrl-C: stopping the stack" in output, output
    stopped = next(line for line in output.splitlines() if line.startswith("stack stopped on Ctrl-C: "))
    assert stopped.startswith("stack stopped on Ctrl-C: nats-server, PostgreSQL"), output
    assert "services" not in stopped and "coordinator pid" not in output and "ready:" not in output, output
    assert "Traceback" not in output
    assert not (state / "stack.json").exists()
