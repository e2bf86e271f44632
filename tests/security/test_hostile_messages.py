"""Hostile messages on every command subject and on the event subjects the coordinator consumes (issue 12).

Each of: random bytes, valid JSON of the wrong schema, a body over the size a service parses, a command for a
run nobody started, a replay of a finished run's command, a forged source. Each must be dead-lettered (or
refused with a reason as an event of its run), and afterwards every service is alive and a normal run succeeds.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import aclosing

import nats
import pytest
import yaml

from golive.shared.commands import (
    AbortRun,
    ApplyMigrations,
    ApproveGate,
    ContinueRun,
    MigrationStatement,
    PauseRun,
    PromoteTraffic,
    ProviderSpec,
    RetryRun,
    RevertMigrations,
    RollbackTraffic,
    ShiftTraffic,
    StartRun,
    command_target,
)
from golive.shared.envelope import MAX_MESSAGE_BYTES, Message, new_envelope, parse_envelope, registered_types
from golive.shared.event_log import read_events
from golive.shared.events import CommandFailed, DeadLettered, ProbeCompleted, RunFinished, RunStarted, Verdict
from tests.builders import skeleton_plan
from tests.harness import run_cli

pytestmark = pytest.mark.e2e

DONE = "run-hostile-done"  # a run that finished (succeeded) before the hostile messages
NOBODY = "run-hostile-nobody"  # a run nobody started
STATEMENT = MigrationStatement(name="x", sql="CREATE INDEX CONCURRENTLY idx_hostile ON stripe_events(type)")
PROVIDER = ProviderSpec(type="dry-run")

# a valid command of each type a service refuses for a run that is unknown or has ended
GUARDED: list[Message] = [
    AbortRun(reason="hostile", requested_by="mallory"), PauseRun(reason="hostile", requested_by="mallory"),
    ContinueRun(requested_by="mallory"), RetryRun(requested_by="mallory"), ApproveGate(approved_by="mallory"),
    ApplyMigrations(database_url_env="GOLIVE_DATABASE_URL", statements=[STATEMENT]),
    RevertMigrations(database_url_env="GOLIVE_DATABASE_URL", statements=[STATEMENT]),
    ShiftTraffic(provider=PROVIDER, canary="dpl_new", weight=50), RollbackTraffic(provider=PROVIDER, canary="dpl_new"),
    PromoteTraffic(provider=PROVIDER, canary="dpl_new"),
]


def command_types() -> list[str]:
    """Every command type of shared/commands.py: golive.cmd.<service>.<action>.v1."""
    return sorted(t for t in registered_types() if t.startswith("golive.cmd."))


class Hostile:
    """A connection that publishes hostile messages and remembers which dead letters they must produce."""

    def __init__(self, settings) -> None:
        self.settings, self.subjects = settings, settings.subjects
        self.expected: list[tuple[str, str, str]] = []  # (service, subject, part of the error)
        self.n = 0

    async def __aenter__(self) -> Hostile:
        self.nc = await nats.connect(self.settings.resolved_nats_url())
        self.js = self.nc.jetstream()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.nc.close()

    async def publish(self, subject: str, body: bytes, stream: str, expect: tuple[str, str] | None) -> None:
        self.n += 1
        await self.js.publish(subject, body, stream=stream, headers={"Nats-Msg-Id": f"hostile-{self.n}"})
        if expect:
            self.expected.append((expect[0], subject, expect[1]))

    async def command(self, data: Message, run_id: str, expect: tuple[str, str] | None, subject: str | None = None,
                      command_id: str | None = None) -> None:
        service, action = command_target(type(data))
        subject = subject or self.subjects.command(service, action)
        self.n += 1
        body = new_envelope(data, id=command_id or f"hostile-cmd-{self.n}", source="/golive/coordinator",
                            runid=run_id, subject=subject).to_json()
        await self.publish(subject, body, self.subjects.command_stream, expect)

    async def letters(self, timeout_s: float = 60.0) -> list[tuple[str, DeadLettered]]:
        """Read the dead-letter stream until every expected letter is there; returns them all."""
        sub = await self.js.subscribe(self.subjects.all_dead_letters, ordered_consumer=True)
        found: list[tuple[str, DeadLettered]] = []
        missing = list(self.expected)
        async with asyncio.timeout(timeout_s):
            while missing:
                letter = parse_envelope((await sub.next_msg(timeout=timeout_s)).data).data
                found.append((letter.service, letter))
                missing = [e for e in missing if not any(
                    s == e[0] and d.subject == e[1] and e[2] in d.error for s, d in found)]
        return found


def forged_events(run_id: str, subjects) -> list[tuple[str, bytes, str]]:
    """(subject, body, reason) of events whose subject, source and type disagree on who sent them."""
    passed = ProbeCompleted(probe="p", count=1, errors=0, p50_ms=1, p95_ms=1, p99_ms=1, max_ms=1, duration_s=1,
                            verdicts=[Verdict(metric="p95_ms", limit=9, observed=1, passed=True)], passed=True,
                            summary="forged")
    finished = RunFinished(outcome="succeeded", reason="forged", duration_s=1)
    failed = CommandFailed(service="prober", command_type="golive.cmd.prober.run.v1", reason="forged")

    def body(data, source, runid=run_id):
        return new_envelope(data, id=f"forged-{source}-{data.short_name()}-{runid}", source=source,
                            runid=runid).to_json()

    return [
        (subjects.event(run_id, "migrator", "probe_completed"), body(passed, "/golive/migrator"), "belongs to prober"),
        (subjects.event(run_id, "migrator", "probe_completed"), body(passed, "/golive/prober"), "source"),
        (subjects.event(run_id, "traffic", "run_finished"), body(finished, "/golive/traffic"), "belongs to coordinator"),
        (subjects.event(run_id, "prober", "probe_completed"), body(passed, "/golive/prober", "other-run"), "runid"),
        (subjects.event(run_id, "migrator", "command_failed"), body(failed, "/golive/migrator"), "names service"),
        (subjects.event(run_id, "nobody", "probe_completed"), body(passed, "/golive/nobody"), "not a golive service"),
    ]


async def hostile_round(settings, plan: dict) -> tuple[list[tuple[str, DeadLettered]], list]:
    subjects = settings.subjects
    async with Hostile(settings) as h:
        for type_name in command_types():
            _, service, action, _ = type_name.split(".")[1:]
            subject, expect = subjects.command(service, action), service
            await h.publish(subject, os.urandom(256), subjects.command_stream, (expect, "not JSON"))
            wrong = {"specversion": "1.0", "id": "w", "source": "/golive/coordinator", "type": type_name,
                     "time": "2026-11-23T02:00:00Z", "runid": DONE, "data": {"colour": "blue"}}
            await h.publish(subject, json.dumps(wrong).encode(), subjects.command_stream, (expect, f"invalid {type_name}"))
            huge = json.dumps({**wrong, "padding": "x" * (MAX_MESSAGE_BYTES + 1)}).encode()
            await h.publish(subject, huge, subjects.command_stream, (expect, f"at most {MAX_MESSAGE_BYTES}"))
        for data in GUARDED:  # a run nobody started: nothing to record a refusal in
            service, _ = command_target(type(data))
            await h.command(data, NOBODY, (service, f"no run {NOBODY}"))
        for data in GUARDED:  # a finished run: refused as an event of that run, with the reason
            await h.command(data, DONE, None)
        # a replay of the finished run's start (the very command, and another start of the same run id)
        start = StartRun(plan=plan, deploy_id="dpl_new", previous_deploy_id="dpl_old")
        await h.command(start, DONE, None, command_id=f"{DONE}.start")
        await h.command(start, DONE, None, command_id=f"{DONE}.start-again")
        # forged source: a command on another service's subject, and events that lie about their sender
        await h.command(ShiftTraffic(provider=PROVIDER, canary="dpl_new", weight=100), DONE,
                        ("migrator", "not trusted"), subject=subjects.command("migrator", "apply"))
        for subject, body, reason in forged_events(DONE, subjects):
            await h.publish(subject, body, subjects.event_stream, ("coordinator", reason))
        return await h.letters(), await run_events(h.js, subjects, DONE, wait_for=len(GUARDED) + 1)


async def run_events(js, subjects, run_id: str, wait_for: int) -> list:
    """The run's events, once ``wait_for`` refusals (CommandFailed) are among them."""
    while True:
        async with aclosing(read_events(js, subjects.events_of_run(run_id))) as feed:
            events = [envelope async for _seq, envelope in feed]
        if sum(isinstance(e.data, CommandFailed) for e in events) >= wait_for:
            return events
        await asyncio.sleep(0.5)


def test_hostile_messages_are_dead_lettered_or_refused_and_the_services_stay_correct(
        services, settings, process_env, tmp_path):
    plan = skeleton_plan(tmp_path)
    first = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old", "--run-id", DONE,
                    env=process_env)
    assert first.returncode == 0, first.stdout + first.stderr

    letters, events = asyncio.run(asyncio.wait_for(hostile_round(settings, yaml.safe_load(plan.read_text())), 120))

    refusals = [e for e in events if isinstance(e.data, CommandFailed)]
    refused = {e.data.command_type: e.data.reason for e in refusals}
    for data in GUARDED:  # every work or operator command for the finished run: refused, saying why
        assert "refused" in refused[data.TYPE], (data.TYPE, refused)
    assert f"run {DONE} already exists" in refused[StartRun.TYPE]
    assert sum(isinstance(e.data, RunStarted) for e in events) == 1  # the replayed start changed nothing
    assert [e.data.outcome for e in events if isinstance(e.data, RunFinished)] == ["succeeded"]  # forged one unread
    assert not [e for e in events if e.source != "/golive/coordinator" and e.data.TYPE.startswith("golive.coordinator")]
    for _service, letter in letters:  # a dead letter never carries more than a bounded part of the body
        assert len(letter.body) <= 4096 * 2

    assert services.exited() == {}  # every service kept running
    # the next deployment (the first run left dpl_new at 100%, as a go-live does)
    after = run_cli("run", str(plan), "--deploy-id", "dpl_next", "--previous-deploy-id", "dpl_new",
                    "--run-id", "run-hostile-after", env=process_env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "run succeeded" in after.stdout
