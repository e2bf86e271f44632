"""A plan names secrets by environment variable: a URL with a password anywhere in it is refused, and the
refusal never shows the password (issue 12, finding 6)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from contextlib import aclosing

import nats
import pytest
import yaml
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from golive.shared.bus import connect_options, ensure_streams
from golive.shared.commands import ApplyMigrations, ProviderSpec, StartRun
from golive.shared.envelope import new_envelope
from golive.shared.event_log import read_events
from golive.shared.plan import Plan
from golive.shared.secrets import MissingSecret, secret_from_env
from golive.stack.service_processes import ServiceProcesses, service_env, wait_until_ready
from tests.builders import skeleton_dict
from tests.harness import run_cli

PASSWORD = "Hunter2Secret"
URL = f"postgresql://postgres:{PASSWORD}@db.example.com:5432/app"
HTTP_URL = f"https://admin:{PASSWORD}@envoy.internal:9901"


def skeleton() -> dict:
    return skeleton_dict()


def _set(plan: dict, path: tuple, value) -> None:
    node = plan
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _probe(**fields) -> dict:
    return {"kind": "pg_health", "database_url_env": "GOLIVE_DATABASE_URL", **fields}


# (where in the plan, the value put there, the path the error must name)
PLACES = [
    (("database", "url_env"), URL, "database.url_env"),
    (("traffic", "provider"), {"type": "envoy", "admin_url": HTTP_URL}, "traffic.provider.admin_url"),
    (("traffic", "provider"), {"type": "envoy", "admin_url_env": HTTP_URL}, "traffic.provider.admin_url_env"),
    (("traffic", "provider"), {"type": "vercel", "project": "p", "token_env": "T", "api_url": HTTP_URL},
     "traffic.provider.api_url"),
    (("probes", "pg"), _probe(database_url_env=URL), "probes.pg.database_url_env"),
    (("probes", "pg"), _probe(replica_url_envs=[URL]), "probes.pg.replica_url_envs[0]"),
    (("probes", "pg"), _probe(pgbouncer_admin_url_env=URL), "probes.pg.pgbouncer_admin_url_env"),
    (("probes", "web"), {"kind": "http", "url": f"{HTTP_URL}/api/health"}, "probes.web.url"),
    (("probes", "web"), {"kind": "http", "url": "https://app.example.com/", "headers_env": {"X-Db": URL}},
     "probes.web.headers_env.X-Db"),
    (("targets", "deployment_url"), "https://u:" + PASSWORD + "@app-{deployment}.vercel.app", "targets.deployment_url"),
    (("notifications", "report_url"), f"{HTTP_URL}/reports", "notifications.report_url"),
    (("notifications", "sinks", "slack", "webhook_url_env"), f"https://hooks.example.com/x:{PASSWORD}@y",
     "notifications.sinks.slack.webhook_url_env"),
    (("notifications", "sinks", "hook"), {"type": "webhook", "webhook_url_env": "W", "proxy": HTTP_URL},
     "notifications.sinks.hook.proxy"),
    (("notifications", "environment"), f"Production ({URL})", "notifications.environment"),
]


@pytest.mark.parametrize(("where", "value", "path"), PLACES, ids=[p for _w, _v, p in PLACES])
def test_plan_check_refuses_a_password_anywhere_and_never_shows_it(tmp_path, where, value, path):
    plan = skeleton()
    _set(plan, where, value)
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(plan))

    result = run_cli("plan", "check", str(file), env=dict(os.environ))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(rf"{re.escape(str(file))}:\d+: {re.escape(path)}: ", result.stderr), result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_the_refusal_names_the_file(tmp_path):
    file = tmp_path / "leaky.yaml"
    plan = skeleton()
    plan["database"]["url_env"] = URL
    file.write_text(yaml.safe_dump(plan))

    result = run_cli("plan", "check", str(file), env=dict(os.environ))

    assert result.returncode == 2
    assert str(file) in result.stderr
    assert "environment variable" in result.stderr  # says what to do instead
    assert PASSWORD not in result.stderr


def test_a_validated_plan_never_carries_a_password_and_the_error_does_not_quote_it():
    plan = skeleton()
    plan["database"]["url_env"] = URL

    with pytest.raises(ValidationError) as caught:
        Plan.model_validate(plan)

    assert PASSWORD not in str(caught.value)


def test_commands_refuse_a_url_where_a_variable_name_belongs():
    with pytest.raises(ValidationError) as caught:
        ApplyMigrations(database_url_env=URL, statements=[])
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        ProviderSpec(type="envoy", admin_url=HTTP_URL)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("name", [URL, "host=db password=" + PASSWORD])
def test_a_missing_secret_error_never_repeats_a_value_given_as_its_name(name):
    with pytest.raises(MissingSecret) as caught:
        secret_from_env(name)

    assert PASSWORD not in str(caught.value)
    assert "not a variable name" in str(caught.value)


def test_run_refuses_a_leaky_plan_before_the_bus(tmp_path, settings):
    plan = skeleton()
    plan["database"]["url_env"] = URL
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(plan))
    env = {**os.environ, "GOLIVE_NATS_URL": settings.resolved_nats_url(), "GOLIVE_SUBJECT_ROOT": settings.subject_root,
           "GOLIVE_STATE_DIR": str(settings.state_dir)}

    result = run_cli("run", str(file), "--run-id", "run-leaky", env=env)

    assert result.returncode == 2
    assert PASSWORD not in result.stdout + result.stderr
    assert asyncio.run(_bodies(settings)) == []  # no stream was even created: nothing was published


def test_the_coordinator_refuses_a_start_run_with_a_password_and_records_none(settings, tmp_path):
    """A StartRun sent straight to the bus (not by `golive run`) with a password in its plan: no run_started."""
    plan = skeleton()
    plan["database"]["url_env"] = URL
    env = service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir)})
    procs = ServiceProcesses(env, tmp_path / "logs").start(("coordinator",))
    try:
        asyncio.run(wait_until_ready(settings, ("coordinator",), procs))
        events = asyncio.run(_start_and_read(settings, plan))
    finally:
        procs.stop()

    types = [json.loads(body)["type"] for body in events]
    assert "golive.coordinator.run_started.v1" not in types
    assert "golive.service.command_failed.v1" in types, types
    assert not any(PASSWORD in body.decode() for body in events)
    logs = list((tmp_path / "logs").glob("*.log"))
    assert [log.name for log in logs] == ["coordinator.log"]
    assert not any(PASSWORD in log.read_text() for log in logs)


async def _start_and_read(settings, plan: dict) -> list[bytes]:
    await ensure_streams(settings)
    nc = await nats.connect(**await connect_options(settings))
    try:
        js = nc.jetstream()
        # built as raw JSON: the model itself would not let the plan through (that is tested above)
        start = new_envelope(StartRun.model_construct(plan=plan, deploy_id="dpl_new", previous_deploy_id="dpl_old",
                                                      requested_by="test", force_window=False),
                             id="run-leak.start", source="/golive/cli", runid="run-leak")
        subject = settings.subjects.command("coordinator", "start_run")
        await js.publish(subject, start.to_json(), headers={"Nats-Msg-Id": start.id})
        bodies: list[bytes] = []
        async with asyncio.timeout(60):
            async with aclosing(read_events(js, settings.subjects.events_of_run("run-leak"), follow=True)) as feed:
                async for _seq, envelope in feed:
                    bodies.append(envelope.to_json())
                    if envelope.correlationid == start.id:
                        return bodies
        return bodies
    finally:
        await nc.close()


async def _bodies(settings) -> list[bytes]:
    nc = await nats.connect(**await connect_options(settings))
    try:
        js = nc.jetstream()
        found = []
        for stream in (settings.subjects.command_stream, settings.subjects.event_stream):
            try:  # by name: the list of all streams is paged, and the suite's server holds hundreds
                info = await js.stream_info(stream)
            except NotFoundError:
                continue
            found += [stream] * info.state.messages
        return found
    finally:
        await nc.close()
