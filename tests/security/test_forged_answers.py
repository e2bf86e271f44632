"""A forged answer never counts (issue 12, finding 3), proven on a real nats-server with deploy/nats.conf.

The migrator's user may publish only on its own subjects (golive.evt.<run>.migrator.<name>); there it publishes
a prober-typed "passed" result for the smoke check of a run whose smoke check really fails. The coordinator must
dead-letter it with the reason, never fold it (live or on replay), and the run must roll back on the real result.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import nats
import pytest

from golive.shared.envelope import new_envelope
from golive.shared.event_log import read_events
from golive.shared.events import PhaseStarted, ProbeCompleted, RunFinished, Verdict
from golive.shared.subjects import Subjects
from tests.builders import skeleton_plan
from tests.harness import start_run
from tests.secured_nats import services_on_own_users

pytestmark = pytest.mark.e2e

ROOT = Subjects()
RUN = "run-forged"


def failing_smoke(plan: dict) -> None:
    """The smoke check measures a 50 ms query against a 20 ms limit: it fails for real, for 5 s."""
    plan["probes"]["slow_smoke"] = {"query": "SELECT pg_sleep(0.05)"}
    plan["smoke"] = [{"probe": "slow_smoke", "duration": "5s", "thresholds": {"p95_ms": 20, "error_rate_pct": 1}}]


def forged_pass(command_id: str, source: str) -> bytes:
    """A prober-typed passing result for ``command_id``, as the migrator's user can publish it."""
    passed = ProbeCompleted(
        probe="slow_smoke", count=5000, errors=0, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, max_ms=4.0, duration_s=5.0,
        verdicts=[Verdict(metric="p95_ms", limit=20, observed=2.0, passed=True, samples=5000)], passed=True,
        summary="p95 2.00 ms <= 20 ms over 5,000 requests")
    return new_envelope(passed, id=f"{command_id}/forged{source.replace('/', '-')}", source=source, runid=RUN,
                        correlationid=command_id, causationid=command_id,
                        subject=ROOT.event(RUN, "migrator", "probe_completed")).to_json()


async def forge_smoke_answers(secured) -> list[str]:
    """Wait for the smoke step, then publish forged passing answers to its command as the migrator user."""
    reader = await nats.connect(secured.url_as("operator"), inbox_prefix="_INBOX_operator")
    forger = await nats.connect(secured.url_as("migrator"), inbox_prefix="_INBOX_migrator")
    try:
        async with aclosing(read_events(reader.jetstream(), ROOT.events_of_run(RUN), follow=True)) as feed:
            async for _seq, envelope in feed:
                if isinstance(envelope.data, PhaseStarted) and envelope.data.step.startswith("smoke:"):
                    position = envelope.id.rsplit("/", 1)[-1]  # <run>/step/<position>
                    command_id = f"{RUN}.{position}.{envelope.data.step}"
                    break
        sent = []
        for source in ("/golive/migrator", "/golive/prober"):  # its own source, and a lie about it
            body = forged_pass(command_id, source)
            ack = await forger.jetstream().publish(ROOT.event(RUN, "migrator", "probe_completed"), body,
                                                   headers={"Nats-Msg-Id": f"forged{source}"})
            assert ack.stream == ROOT.event_stream  # NATS let the migrator publish on its own subject
            sent.append(source)
        return sent
    finally:
        await reader.close()
        await forger.close()


async def dead_letters(secured) -> dict[str, int]:
    nc = await nats.connect(secured.url_as("operator"), inbox_prefix="_INBOX_operator")
    try:
        info = await nc.jetstream().stream_info(ROOT.dead_letter_stream, subjects_filter=ROOT.all_dead_letters)
        return dict(info.state.subjects or {})
    finally:
        await nc.close()


async def run_as_read(secured) -> list:
    nc = await nats.connect(secured.url_as("operator"), inbox_prefix="_INBOX_operator")
    try:
        async with aclosing(read_events(nc.jetstream(), ROOT.events_of_run(RUN))) as feed:
            return [envelope async for _seq, envelope in feed]
    finally:
        await nc.close()


def test_a_prober_result_forged_by_the_migrator_user_is_dead_lettered_and_the_failing_run_rolls_back(
        secured_nats, database_url, webhook, tmp_path):  # noqa: F811
    with services_on_own_users(secured_nats, database_url, webhook.url, tmp_path) as base:
        plan = skeleton_plan(tmp_path, edit=failing_smoke)
        run = start_run(plan, RUN, secured_nats.env_as("operator", base), "--deploy-id", "dpl_new",
                        "--previous-deploy-id", "dpl_old")
        try:
            forged = asyncio.run(asyncio.wait_for(forge_smoke_answers(secured_nats), 60))
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        letters = asyncio.run(dead_letters(secured_nats))
        events = asyncio.run(run_as_read(secured_nats))
    coordinator_log = (tmp_path / "logs" / "coordinator.log").read_text()

    assert forged == ["/golive/migrator", "/golive/prober"]
    assert run.returncode == 1, out + err  # rolled back: the real, failing smoke result decided
    assert "run succeeded" not in out
    finished = [e.data for e in events if isinstance(e.data, RunFinished)]
    assert [f.outcome for f in finished] == ["rolled_back"] and "p95" in finished[0].reason, finished
    # neither forged answer is part of the run as read back (replays, `golive status`, reports)
    assert not [e for e in events if isinstance(e.data, ProbeCompleted) and e.data.passed]
    # both are kept in the dead-letter stream, with the reason logged
    assert letters.get(ROOT.dead_letter("coordinator"), 0) >= 2, letters
    assert "belongs to prober, not to migrator" in coordinator_log
