"""Whole runs with every service as its own process: a Slack that never answers does not hold up the
rollback, and no secret (the database password, the webhook URL) reaches a message, an event or a log line."""

from __future__ import annotations

import asyncio
import json
import secrets
from contextlib import aclosing
from pathlib import Path

import nats
import psycopg
import pytest

from golive.shared.event_log import read_events
from golive.shared.events import NotificationFailed, RunFinished, StepFailed
from golive.stack.webhook_sink import WebhookSink
from tests.builders import skeleton_plan
from tests.harness import run_cli

pytestmark = pytest.mark.e2e

WEBHOOK_TOKEN = f"B0GOLIVE/{secrets.token_hex(12)}"
DB_PASSWORD = f"pw-{secrets.token_hex(10)}"


@pytest.fixture
def webhook() -> WebhookSink:
    """The receiver, at a URL whose path is the secret part, as Slack's are."""
    with WebhookSink(path=f"/services/T0GOLIVE/{WEBHOOK_TOKEN}") as sink:
        yield sink


@pytest.fixture
def database_url(postgres_admin_url) -> str:
    """A fresh database, reached as a role that has a password (the URL carries it)."""
    name, role = f"t_{secrets.token_hex(6)}", f"r_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "golive_test_template"')
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'")
    info = psycopg.conninfo.conninfo_to_dict(postgres_admin_url)
    yield f"postgresql://{role}:{DB_PASSWORD}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def write_plan(tmp_path: Path, sink: dict, smoke_p95_ms: float = 20, on: list[str] | None = None) -> Path:
    def edit(plan: dict) -> None:
        plan["smoke"][0]["thresholds"]["p95_ms"] = smoke_p95_ms
        plan["notifications"]["sinks"]["slack"].update(sink)
        if on is not None:
            plan["notifications"]["on"] = on

    return skeleton_plan(tmp_path, edit=edit)


def stream_texts(settings) -> list[str]:
    """Every message on this test's event and dead-letter streams, as raw text."""
    async def collect() -> list[str]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            js, out = nc.jetstream(), []
            for subject in (settings.subjects.all_events, settings.subjects.all_dead_letters):
                sub = await js.subscribe(subject, ordered_consumer=True)
                try:
                    while True:
                        try:
                            msg = await sub.next_msg(timeout=1.0)
                        except (TimeoutError, asyncio.TimeoutError):
                            break
                        out.append(msg.data.decode() + json.dumps(dict(msg.headers or {})))
                finally:
                    await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    return asyncio.run(collect())


def run_events(settings, run_id: str, until, timeout_s: float = 60.0) -> list:
    """The run's events, followed until ``until(events)`` holds."""
    async def collect() -> list:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            events = []
            async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run(run_id), follow=True)) as feed:
                async for _seq, envelope in feed:
                    events.append(envelope)
                    if until(events):
                        return events
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(collect(), timeout_s))


def test_receiver_that_never_answers_does_not_hold_up_the_rollback_and_failures_are_published(
    services, settings, process_env, webhook, tmp_path
):
    webhook.hang = True
    # a smoke limit no query meets: the run fails right after the migration and rolls back
    plan = write_plan(tmp_path, {"attempts": 1, "timeout_s": 6}, smoke_p95_ms=0.001,
                      on=["rollback_started", "run_rolled_back"])

    result = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-hang", env=process_env)

    assert result.returncode == 1, result.stdout + result.stderr
    failed = lambda evs: [e for e in evs if isinstance(e.data, NotificationFailed)]  # noqa: E731
    events = run_events(settings, "run-hang", lambda evs: len(failed(evs)) == 2)
    types = [type(e.data) for e in events]
    finished = types.index(RunFinished)
    step_failed = types.index(StepFailed)
    first_failure = types.index(NotificationFailed)
    # the rollback ran and finished while the rollback message was still waiting on the receiver
    assert step_failed < finished < first_failure
    assert events[finished].data.outcome == "rolled_back"
    assert [(e.data.kind, e.data.sink, e.data.attempts) for e in failed(events)] == [
        ("rollback_started", "slack", 1), ("run_rolled_back", "slack", 1),
    ]
    assert all("no answer within 6s" in e.data.reason for e in failed(events))
    assert webhook.received == [] and len(webhook.attempts) == 2
    assert "could not notify slack of rollback_started" in run_cli(
        "events", "--run", "run-hang", env=process_env).stdout


def test_no_secret_reaches_a_message_an_event_or_a_log_line_in_a_whole_run(
    services, settings, process_env, webhook, database_url, tmp_path
):
    assert DB_PASSWORD in database_url and WEBHOOK_TOKEN in webhook.url
    plan = write_plan(tmp_path, {})

    result = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                     "--run-id", "run-secret", env=process_env)

    assert result.returncode == 0, result.stdout + result.stderr
    received = webhook.wait_for(lambda r: any("SUCCESS" in m.get("text", "") for m in r))
    assert [m["text"].split(" ")[0] for m in received] == ["🚀", "✅", "✅", "✅", "✅"]  # start, 3 stages, success
    services.stop()  # flush every log line
    captured = {
        "webhook messages": json.dumps(received, ensure_ascii=False),
        "events and dead letters": "\n".join(stream_texts(settings)),
        "cli output": result.stdout + result.stderr,
        **{f"log {p.name}": p.read_text() for p in (tmp_path / "logs").glob("*.log")},
    }
    assert len(captured) >= 7 and "run-secret" in captured["events and dead letters"]
    for where, text in captured.items():
        for secret in (DB_PASSWORD, WEBHOOK_TOKEN, webhook.url, database_url):
            assert secret not in text, f"a secret appears in {where}"
