"""The walking skeleton end to end: five service processes, the real broker, the real database, a real
webhook receiver, and `golive run` as a user runs it."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import httpx
import nats
import pytest

from golive.shared.envelope import parse_envelope
from golive.shared.events import CompensationStarted, DeadLettered, MigrationsApplied, PhaseStarted, RunFinished
from golive.stack import process, service_processes
from golive.stack.service_processes import ServiceProcesses, wait_until_ready
from tests.builders import skeleton_dict, skeleton_plan
from tests.e2e.run_outcome import dry_run_weights, index_state, run_events, wire_headers
from tests.harness import run_cli

pytestmark = pytest.mark.e2e


def write_plan(tmp_path: Path, **changes) -> Path:
    """The skeleton plan with short holds, plus ``changes`` applied to its top-level keys."""
    return skeleton_plan(tmp_path, edit=lambda plan: plan.update(changes))


def test_skeleton_run_succeeds_builds_index_ends_at_100_and_announces_success(
    services, settings, process_env, database_url, webhook, tmp_path
):
    plan = write_plan(tmp_path)
    result = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-e2e-ok", env=process_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "run succeeded" in result.stdout
    assert index_state(database_url, "idx_stripe_events_created") == (True, True)
    assert dry_run_weights(settings)["dpl_new"]["weight"] == 100
    # the notifier reads the same events: its messages may land just after the run's last event
    received = webhook.wait_for(lambda r: any("SUCCESS" in m["text"] for m in r))
    texts = [m["text"] for m in received]
    assert texts[0] == "🚀 Starting skeleton Production Deployment", texts
    assert sum("stage" in t and "passed" in t for t in texts) == 3 and "SUCCESS" in texts[-1], texts

    events = run_events(settings, "run-e2e-ok")
    steps = [e.data.step for e in events if isinstance(e.data, PhaseStarted)]
    assert steps == [
        "migrate", "smoke:stripe_recent",
        "stage1:shift:10", "stage1:hold",
        "stage2:shift:50", "stage2:hold",
        "stage3:shift:100", "stage3:hold",
    ]
    assert all(e.specversion == "1.0" and e.runid == "run-e2e-ok" for e in events)
    assert {e.source for e in events} == {f"/golive/{s}" for s in ("coordinator", "migrator", "prober", "traffic", "notifier")}
    # on the wire, every producer's events carry the one header set of shared/envelope.py's nats_headers: one
    # Content-Type, the envelope id as Nats-Msg-Id, nothing random (a correlation id lives in the envelope); the
    # JetStream client may add its Nats-Expected-* publish conditions
    stored = wire_headers(settings, "run-e2e-ok")
    assert len(stored) == len(events)
    for event_id, headers in stored:
        ours = sorted((name, value) for name, value in headers if not name.startswith("Nats-Expected-"))
        assert ours == [("Content-Type", "application/cloudevents+json"), ("Nats-Msg-Id", event_id)], headers


def test_every_line_a_service_logs_is_a_json_object_naming_the_service(services, settings, process_env, tmp_path):
    """Log shippers parse each line: FastStream's banner and access lines, nats-py's and every library's log lines
    come out as JSON like golive's own, with no colour codes, from start-up to a graceful stop."""
    result = run_cli("run", str(write_plan(tmp_path)), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-e2e-logs", env=process_env)
    assert result.returncode == 0, result.stdout + result.stderr
    services.stop()
    for log in sorted(services.log_dir.glob("*.log")):
        lines = log.read_text().splitlines()
        assert len(lines) > 3, log.name
        for line in lines:
            assert "\x1b[" not in line, f"{log.name}: colour codes in {line!r}"
            entry = json.loads(line)  # fails with the line when it is not JSON
            assert entry["service"] == services.names[log.stem] and entry["level"] and entry["event"], line


def test_a_service_that_cannot_start_says_why_in_one_json_line_and_exits_1(settings, process_env, tmp_path):
    """A metrics port already taken (or any failure at start): the service's log stays JSON, no Rich traceback."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_cli("serve", "traffic", "--metrics-port", str(port), env=process_env)
    assert done.returncode == 1, done.stdout + done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]  # fails with the line that is not JSON
    [failed] = [e for e in entries if e["event"] == "service.failed"]
    assert failed["service"] == "traffic" and "Address already in use" in failed["error"], failed


def test_services_started_while_other_processes_take_ports_still_start(settings, process_env, tmp_path, monkeypatch):
    """Each service binds a metrics port of its own choosing (0: any free one) and says which: a port found free
    beforehand may be taken by another process before the service binds it (it happened in CI). Here every port
    found free is taken at once."""
    grabbed: list[socket.socket] = []

    def taken_at_once() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        grabbed.append(socket.create_server(("127.0.0.1", port)))
        return port

    monkeypatch.setattr(process, "free_port", taken_at_once)
    monkeypatch.setattr(service_processes, "free_port", taken_at_once, raising=False)  # where it was imported
    procs = ServiceProcesses(process_env, tmp_path / "logs")
    try:
        procs.start(("traffic",))
        asyncio.run(wait_until_ready(settings, ["traffic"], procs))
        port = procs.metrics_ports["traffic"]
        assert port not in [s.getsockname()[1] for s in grabbed]
        assert "golive_" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        procs.stop()
        for s in grabbed:
            s.close()


def test_a_hung_service_can_be_asked_for_its_stacks_and_goes_on(settings, process_env, tmp_path):
    """SIGUSR1: every thread's Python stack in the service's log (what the harness asks a service that would not
    stop before it kills it); the service keeps serving."""
    procs = ServiceProcesses(process_env, tmp_path / "logs").start(("traffic",))
    try:
        asyncio.run(wait_until_ready(settings, ["traffic"], procs))
        procs.procs["traffic"].send_signal(signal.SIGUSR1)
        log, deadline = tmp_path / "logs" / "traffic.log", time.monotonic() + 10
        while "most recent call first" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "most recent call first" in log.read_text() and "golive" in log.read_text()
        assert procs.procs["traffic"].poll() is None
        assert "golive_" in httpx.get(f"http://127.0.0.1:{procs.metrics_ports['traffic']}/metrics").text
    finally:
        procs.stop()


def test_breaching_probe_rolls_back_in_reverse_order_and_exits_1(
    services, settings, process_env, database_url, webhook, tmp_path
):
    plan_data = skeleton_dict()
    stages = plan_data["canary"]["stages"]
    for stage in stages:
        stage["hold"] = "1s"
    # stage 2 measures a query that takes 30 ms against a 20 ms limit: a real breach, not a faked verdict
    stages[1]["checks"] = [{"probe": "slow_query", "thresholds": {"p95_ms": 20}}]
    plan = write_plan(tmp_path, canary={"stages": stages},
                      probes={**plan_data["probes"], "slow_query": {"query": "SELECT pg_sleep(0.03)"}})

    result = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-e2e-breach", env=process_env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "stage2:hold failed" in result.stdout and "slow_query" in result.stdout
    events = run_events(settings, "run-e2e-breach")
    undone = [e.data.undoes for e in events if isinstance(e.data, CompensationStarted)]
    assert undone == ["stage1:shift:10", "migrate"]  # newest first
    finished = [e.data for e in events if isinstance(e.data, RunFinished)]
    assert finished[0].outcome == "rolled_back" and "p95" in finished[0].reason
    assert dry_run_weights(settings)["dpl_new"] == {"weight": 0, "stable": "dpl_old"}
    assert index_state(database_url, "idx_stripe_events_created") is None  # the plan drops new indexes
    received = webhook.wait_for(lambda r: any("rolled back" in m["text"] for m in r))
    texts = [m["text"] for m in received]
    assert any("Rollback Triggered" in t for t in texts) and "rolled back to dpl_old" in texts[-1], texts
    assert not any("SUCCESS" in t for t in texts)


def test_malformed_command_is_dead_lettered_and_the_next_command_still_runs(
        services, settings, process_env, database_url, tmp_path):
    async def garbage_then_letter() -> DeadLettered:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            js = nc.jetstream()
            subjects = settings.subjects
            await js.publish(subjects.command("migrator", "apply"), b"{not json", stream=subjects.command_stream,
                             headers={"Nats-Msg-Id": "garbage-1"})
            letters = await js.subscribe(subjects.all_dead_letters, ordered_consumer=True)
            return parse_envelope((await letters.next_msg(timeout=20)).data).data
        finally:
            await nc.close()

    letter = asyncio.run(garbage_then_letter())
    # the migrator's next command is a real run's (it works only for a run that started: shared/run_guard.py)
    result = run_cli("run", str(write_plan(tmp_path)), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-dlq", env=process_env)

    assert letter.service == "migrator"
    assert letter.body == "{not json" and "not JSON" in letter.error
    assert result.returncode == 0, result.stdout + result.stderr
    applied = [e for e in run_events(settings, "run-dlq") if isinstance(e.data, MigrationsApplied)]
    assert len(applied) == 1 and applied[0].correlationid.startswith("run-dlq.")
    assert index_state(database_url, "idx_stripe_events_created") == (True, True)
    assert services.exited() == {}  # the migrator kept running
