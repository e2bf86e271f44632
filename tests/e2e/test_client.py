"""The Python client (golive/api.py) as a team's pipeline drives it, on the five services as processes: start a run,
watch it to its end, read its status (as `golive status --json` prints it); approve a gate and abort at the next."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import aclosing

import nats
import pytest

from golive.api import Client, RunNotControllable, exit_code
from golive.shared.envelope import new_envelope
from golive.shared.events import PhaseStarted, RunFinished, RunStarted
from golive.views.as_json import run_document
from tests.builders import skeleton_plan
from tests.cli_runs import gated_run, publish_events
from tests.harness import REPO, run_cli

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "pipeline.py"


def listed(run_id: str, env: dict[str, str], timeout_s: float = 30.0) -> dict:
    """The run as `golive status --json` lists it once its summary says it ended: the coordinator writes the run
    history after it records the run's end, so the list may lag the event for a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = run_cli("status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        found = [run for run in json.loads(result.stdout) if run["run_id"] == run_id]
        if found and found[0]["outcome"] != "running":
            return found[0]
        assert time.monotonic() < deadline, result.stdout
        time.sleep(0.3)


def test_a_pipeline_starts_a_run_watches_it_to_its_end_and_reads_its_status(services, settings, process_env, tmp_path):
    client = Client(settings, operator="ci-pipeline")

    async def pipeline():
        run_id = await client.start(skeleton_plan(tmp_path), deploy_id="dpl_new", previous_deploy_id="dpl_old",
                                    run_id="run-client")
        async with aclosing(client.watch(run_id)) as events:
            seen = [event async for event in events]
        return run_id, seen, await client.status(run_id)

    run_id, seen, summary = asyncio.run(pipeline())

    assert run_id == "run-client"
    assert isinstance(seen[0].data, RunStarted) and isinstance(seen[-1].data, RunFinished), [e.type for e in seen]
    assert sum(isinstance(e.data, RunFinished) for e in seen) == 1  # the iterator ends with the run
    assert seen[-1].data.outcome == "succeeded", seen[-1].data.reason
    assert (summary.run_id, summary.plan, summary.deploy_id, summary.outcome) == ("run-client", "skeleton", "dpl_new",
                                                                                  "succeeded")
    assert exit_code(summary.outcome) == 0
    # the command line prints the very same record
    one = run_cli("status", run_id, "--json", env=process_env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == run_document(summary)
    assert listed(run_id, process_env)["state"] == "succeeded"
    # a start of a run id that already ran is refused by the coordinator, with its reason
    with pytest.raises(RunNotControllable, match="run-client not started: run run-client already exists"):
        asyncio.run(client.start(skeleton_plan(tmp_path), run_id="run-client"))
    again = run_cli("run", str(skeleton_plan(tmp_path)), "--run-id", "run-client", env=process_env)
    assert again.returncode == 2 and "run run-client already exists" in again.stdout, again.stdout + again.stderr
    assert "run run-client started" not in again.stdout  # the earlier run's events are not this start's

    # docs/client.md's example, as a user runs it: a run of its own, to its end, exit 0
    assert EXAMPLE.read_text() in (REPO / "docs" / "client.md").read_text()  # the page shows the very file
    example = subprocess.run([sys.executable, str(EXAMPLE), str(skeleton_plan(tmp_path)), "dpl_a", "dpl_b"],
                             env=process_env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert example.returncode == 0, example.stdout + example.stderr
    assert example.stdout.startswith("started run-") and ": succeeded (" in example.stdout.splitlines()[-1], example.stdout


def test_watch_reads_a_runs_history_once_and_follows_on_from_where_it_read(settings):
    # a real nats-server, no services: the run's events as its services recorded them; it waits at its gate
    run = gated_run("run-watched")
    history = len(run.stream)
    finished = new_envelope(RunFinished(outcome="rolled_back", reason="aborted at the gate", duration_s=9.0),
                            id="run-watched/finished", source="/golive/coordinator", runid="run-watched")
    client = Client(settings, operator="ci-pipeline")

    async def watching() -> tuple[list, list[int]]:
        await publish_events(run.stream, settings)
        # every event the stream delivers to any reader comes to an inbox: an observer of every inbox counts them
        observer = await nats.connect(settings.resolved_nats_url())
        delivered: list[int] = []

        async def seen(msg) -> None:
            if msg.reply.startswith("$JS.ACK.") and msg.metadata.stream == settings.subjects.event_stream:
                delivered.append(msg.metadata.sequence.stream)

        try:
            await observer.subscribe("_INBOX.>", cb=seen)
            await observer.flush()
            events = []
            async with aclosing(client.watch("run-watched")) as feed:
                async for event in feed:
                    events.append(event)
                    if len(events) == history:  # the run goes on while it is watched: it ends now
                        await publish_events([finished], settings)
            await observer.flush()
        finally:
            await observer.close()
        return events, delivered

    events, delivered = asyncio.run(watching())

    assert [e.id for e in events] == [*(e.id for e in run.stream), finished.id]
    assert sorted(delivered) == list(range(1, history + 2)), delivered  # each event read once, none twice


def test_a_pipeline_approves_one_gate_and_aborts_at_the_next(services, settings, process_env, tmp_path):
    def gate_stages_2_and_3(plan: dict) -> None:
        plan["canary"]["stages"][1]["approval"] = True
        plan["canary"]["stages"][2]["approval"] = True

    client = Client(settings, operator="ci-pipeline")

    async def pipeline():
        run_id = await client.start(skeleton_plan(tmp_path, edit=gate_stages_2_and_3), run_id="run-client-gate")
        gates, waiting = [], []
        async with aclosing(client.watch(run_id)) as events:
            async for event in events:
                if isinstance(event.data, PhaseStarted) and event.data.where.kind == "gate":
                    gates.append(event.data.where.stage)
                    waiting.append((await client.status(run_id)).state)
                    if event.data.where.stage == 2:
                        with pytest.raises(RunNotControllable, match="not at stage 3"):
                            await client.approve(run_id, stage=3)  # the wrong gate: refused, nothing sent
                        approved = await client.approve(run_id, stage=2, comment="dashboards green")
                    else:
                        aborted = await client.abort(run_id, "checkout errors on the dashboard")
                        break
        return gates, waiting, approved, aborted, await client.status(run_id)

    gates, waiting, approved, aborted, summary = asyncio.run(pipeline())

    assert gates == [2, 3] and waiting == ["waiting", "waiting"]
    assert approved == "stage2:gate"
    assert aborted.outcome == "rolled_back" and aborted == summary
    assert summary.rollback is not None and "checkout errors on the dashboard" in summary.rollback.reason, summary
    assert exit_code(summary.outcome) == 1
