"""deploy/nats.conf, the accounts file docker-compose.yml mounts, proven on a real nats-server.

Each service connects as its own user and can do its job (a whole go-live runs with the five services and
the CLI each on their own credentials, and the server logs no violation), but cannot publish another
service's commands or events (the server refuses: a permissions violation). The monitoring user reads a
run's events with a consumer it names (examples/subscribe_run.py, plain nats-py) and cannot publish. Every
other forbidden operation of every user: tests/security/test_nats_permission_matrix.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import aclosing

import pytest
from nats.js.api import ConsumerConfig

from golive.shared.envelope import new_envelope
from golive.shared.event_log import read_events
from golive.shared.events import MigrationsApplied, PhaseStarted, RunFinished, RunStarted, TrafficShifted
from golive.shared.subjects import SERVICES
from tests.builders import skeleton_plan
from tests.harness import REPO, run_cli
from tests.secured_nats import ROOT, Client, SecuredNats, services_on_own_users, streams_exist

# --- the permission matrix ---------------------------------------------------------------------------

RUN = "run-perm"

# (user, subjects it may publish on a stream, subjects it must not publish)
PUBLISH = [
    ("coordinator",
     [ROOT.command("migrator", "apply"), ROOT.command("prober", "run"), ROOT.command("traffic", "shift"),
      ROOT.event(RUN, "coordinator", "run_started"), ROOT.dead_letter("coordinator")],
     [ROOT.command("coordinator", "start_run"), ROOT.event(RUN, "traffic", "traffic_shifted"),
      ROOT.event(RUN, "notifier", "notification_sent"), ROOT.dead_letter("migrator"),
      "$KV.GOLIVE_NOTIFICATIONS.k"]),  # the notifier's delivery ledger
    ("migrator",
     [ROOT.event(RUN, "migrator", "migrations_applied"), ROOT.dead_letter("migrator")],
     [ROOT.command("migrator", "apply"), ROOT.command("traffic", "rollback"),
      ROOT.event(RUN, "coordinator", "run_finished"), ROOT.event(RUN, "prober", "probe_completed"),
      f"$KV.GOLIVE_LEASES.{RUN}", f"$JS.API.STREAM.DELETE.{ROOT.command_stream}"]),
    ("prober",
     [ROOT.event(RUN, "prober", "probe_window"), ROOT.dead_letter("prober")],
     [ROOT.command("prober", "run"), ROOT.command("migrator", "revert"), ROOT.event(RUN, "coordinator", "step_failed"),
      ROOT.stop_probes(RUN)]),
    ("traffic",
     [ROOT.event(RUN, "traffic", "traffic_shifted"), ROOT.dead_letter("traffic")],
     [ROOT.command("traffic", "shift"), ROOT.command("coordinator", "abort"),
      ROOT.event(RUN, "migrator", "migrations_reverted"), ROOT.stop_probes(RUN)]),
    ("notifier",
     [ROOT.event(RUN, "notifier", "notification_sent"), ROOT.dead_letter("notifier")],
     [ROOT.command("coordinator", "start_run"), ROOT.command("traffic", "rollback"),
      ROOT.event(RUN, "coordinator", "run_finished"), f"$KV.GOLIVE_LEASES.{RUN}"]),  # the coordinator's run leases
    ("operator",
     [ROOT.command("coordinator", "start_run"), ROOT.command("coordinator", "abort")],
     [ROOT.command("traffic", "shift"), ROOT.command("migrator", "apply"), ROOT.event(RUN, "coordinator", "run_started")]),
    ("monitoring",
     [],
     [ROOT.command("coordinator", "start_run"), ROOT.command("traffic", "rollback"),
      ROOT.event(RUN, "coordinator", "run_finished"), ROOT.dead_letter("notifier"), ROOT.stop_probes(RUN),
      # nor may it change or delete a stream, or consume the command queue (a work queue: reading is taking)
      f"$JS.API.STREAM.DELETE.{ROOT.event_stream}", f"$JS.API.STREAM.UPDATE.{ROOT.event_stream}",
      f"$JS.API.STREAM.PURGE.{ROOT.event_stream}", f"$JS.API.CONSUMER.CREATE.{ROOT.command_stream}"]),
]


@pytest.mark.parametrize("user, allowed, denied", PUBLISH, ids=[row[0] for row in PUBLISH])
async def test_each_user_publishes_only_its_own_commands_and_events(secured_nats, user, allowed, denied):
    await streams_exist(secured_nats)
    async with Client(secured_nats, user) as client:
        for subject in allowed:  # the stream stored it: the PubAck names the stream
            ack = await client.js.publish(subject, b"{}", headers={"Nats-Msg-Id": f"{user}/{subject}"})
            assert ack.stream in {ROOT.command_stream, ROOT.event_stream, ROOT.dead_letter_stream}, subject
        for subject in denied:
            await client.nc.publish(subject, b"{}")
        for subject in denied:
            await client.refused("publish", subject)
    of_user = [line for line in secured_nats.violations() if f"user:{user}" in line]
    assert not [line for line in of_user if any(f'"{s}"' in line for s in allowed)]
    assert all(any(f'"{s}"' in line for line in of_user) for s in denied)  # the filter reads the server's lines


async def test_a_service_cannot_consume_another_services_commands(secured_nats):
    await streams_exist(secured_nats)
    steal = f"$JS.API.CONSUMER.CREATE.{ROOT.command_stream}.migrator.{ROOT.commands_of('traffic')}"
    steal_by_name = f"$JS.API.CONSUMER.CREATE.{ROOT.command_stream}.traffic.{ROOT.commands_of('traffic')}"
    async with Client(secured_nats, "migrator") as migrator:
        # its own durable consumer, on its own commands: allowed (as `golive serve migrator` does at start)
        await migrator.js.add_consumer(ROOT.command_stream, ConsumerConfig(
            name="migrator", durable_name="migrator", filter_subject=ROOT.commands_of("migrator")))
        await migrator.nc.publish(steal, b"{}")
        await migrator.nc.publish(steal_by_name, b"{}")
        await migrator.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{ROOT.command_stream}.traffic", b"{}")
        await migrator.refused("publish", steal)
        await migrator.refused("publish", steal_by_name)
        await migrator.refused("publish", f"$JS.API.CONSUMER.MSG.NEXT.{ROOT.command_stream}.traffic")
    async with Client(secured_nats, "traffic") as traffic:
        await traffic.nc.subscribe(ROOT.stop_probes("*"))  # the prober's stop subject
        await traffic.nc.subscribe(ROOT.commands_of("traffic"))  # commands only come through its consumer
        await traffic.refused("subscription", ROOT.stop_probes("*"))
        await traffic.refused("subscription", ROOT.commands_of("traffic"))


async def test_only_the_coordinator_stops_a_probe_on_the_core_subject_every_prober_hears(secured_nats):
    stop = ROOT.stop_probes(RUN)
    async with Client(secured_nats, "prober") as prober, Client(secured_nats, "coordinator") as coordinator, \
            Client(secured_nats, "operator") as operator:
        heard = await prober.nc.subscribe(ROOT.stop_probes("*"))
        await prober.nc.flush()
        await operator.nc.publish(stop, b"from the operator")
        await operator.refused("publish", stop)
        await coordinator.nc.publish(stop, b"from the coordinator")
        message = await heard.next_msg(timeout=10)
    assert message.data == b"from the coordinator"  # the operator's never arrived: it was refused first


def subscribe_run(run_id: str, secured: SecuredNats) -> subprocess.CompletedProcess:
    """examples/subscribe_run.py as the monitoring team runs it: its own process, the monitoring user."""
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "subscribe_run.py"), run_id], capture_output=True, text=True,
        timeout=60, env={**os.environ, "NATS_URL": secured.url, "NATS_USER": "monitoring",
                         "NATS_PASSWORD": secured.passwords["monitoring"]})


async def test_monitoring_reads_a_run_with_a_consumer_of_its_own_and_cannot_publish(secured_nats, tmp_path):
    await streams_exist(secured_nats)
    async with Client(secured_nats, "coordinator") as coordinator:
        for i, data in enumerate([RunStarted(plan={}, plan_name="skeleton", deploy_id="dpl_new"),
                                  PhaseStarted(phase="migrate", step="migrate"),
                                  RunFinished(outcome="succeeded", reason="all stages passed", duration_s=1.0)]):
            envelope = new_envelope(data, id=f"{RUN}/{i}", source="/golive/coordinator", runid=RUN,
                                    subject=ROOT.event(RUN, "coordinator", data.short_name()))
            await coordinator.js.publish(envelope.subject, envelope.to_json(), headers={"Nats-Msg-Id": envelope.id})

    printed = subscribe_run(RUN, secured_nats)

    assert printed.returncode == 0, printed.stderr
    types = [line.split()[1] for line in printed.stdout.splitlines()]
    assert types == [RunStarted.TYPE, PhaseStarted.TYPE, RunFinished.TYPE]
    assert '"outcome":"succeeded"' in printed.stdout.splitlines()[-1]
    assert secured_nats.passwords["monitoring"] not in printed.stdout + printed.stderr
    async with Client(secured_nats, "monitoring") as monitoring:
        await monitoring.nc.publish(ROOT.event(RUN, "coordinator", "run_finished"), b"{}")
        await monitoring.refused("publish", ROOT.event(RUN, "coordinator", "run_finished"))
        info = await monitoring.js.stream_info(ROOT.event_stream)
    assert info.state.messages == 3  # the refused event never reached the stream
    violations = secured_nats.violations()
    assert [line for line in violations if "user:monitoring" in line]  # the refused publish, as the server logs it
    assert not [line for line in violations if "user:coordinator" in line]


async def publish_run(secured: SecuredNats, run_id: str, events: list) -> None:
    """``events`` of run ``run_id``, as the coordinator publishes them."""
    async with Client(secured, "coordinator") as coordinator:
        for i, data in enumerate(events):
            envelope = new_envelope(data, id=f"{run_id}/{len(events)}/{i}", source="/golive/coordinator", runid=run_id,
                                    subject=ROOT.event(run_id, "coordinator", data.short_name()))
            await coordinator.js.publish(envelope.subject, envelope.to_json(), headers={"Nats-Msg-Id": envelope.id})


@pytest.mark.parametrize("user", ["coordinator", "notifier", "operator", "monitoring"])
async def test_each_reader_replays_and_follows_a_run_with_consumers_it_names_and_nothing_is_refused(
        secured_nats, user):
    """shared/event_log.py reads the log as the coordinator (replay), the notifier (a run's history), the operator
    (golive events, run, status) and monitoring do: through consumers named in the create subject, under
    deploy/nats.conf's per-name grants (the unnamed create subject is nobody's)."""
    await streams_exist(secured_nats)
    run = f"run-read-{user}"
    first = [RunStarted(plan={}, plan_name="skeleton", deploy_id="dpl_new"), PhaseStarted(phase="migrate", step="m")]
    await publish_run(secured_nats, run, first)
    async with Client(secured_nats, user) as reader:
        async with aclosing(read_events(reader.js, ROOT.events_of_run(run))) as feed:
            replayed = [(seq, envelope.type) async for seq, envelope in feed]
        assert [t for _, t in replayed] == [RunStarted.TYPE, PhaseStarted.TYPE]
        async with aclosing(read_events(reader.js, ROOT.events_of_run(run), from_seq=replayed[1][0])) as feed:
            assert [envelope.type async for _, envelope in feed] == [PhaseStarted.TYPE]
        async with aclosing(read_events(reader.js, ROOT.events_of_run(run), up_to_seq=replayed[0][0])) as feed:
            assert [envelope.type async for _, envelope in feed] == [RunStarted.TYPE]
        async with aclosing(read_events(reader.js, ROOT.events_of_run(run), follow=True)) as feed:
            followed = [(await anext(feed))[1].type, (await anext(feed))[1].type]
            await publish_run(secured_nats, run, [RunFinished(outcome="succeeded", reason="ok", duration_s=1.0)])
            followed.append((await anext(feed))[1].type)
        assert followed == [RunStarted.TYPE, PhaseStarted.TYPE, RunFinished.TYPE]
    assert [line for line in secured_nats.violations() if f"user:{user}" in line] == []


@pytest.mark.e2e
def test_a_whole_go_live_runs_with_every_service_on_its_own_credentials(
        secured_nats, database_url, webhook, tmp_path):
    with services_on_own_users(secured_nats, database_url, webhook.url, tmp_path) as base:
        plan = skeleton_plan(tmp_path)
        result = run_cli("run", str(plan), "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old",
                         "--run-id", "run-secured", env=secured_nats.env_as("operator", base))
        received = webhook.wait_for(lambda r: any("SUCCESS" in m["text"] for m in r)) if result.returncode == 0 else []
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
    assert result.returncode == 0, (result.stdout + result.stderr + "".join(t[-3000:] for t in logs.values())
                                    + f"\nrefused by deploy/nats.conf: {secured_nats.violations()}")
    assert "run succeeded" in result.stdout
    assert any("SUCCESS" in m["text"] for m in received)  # the notifier read the events and kept its ledger (KV)
    assert set(logs) >= {f"{name}.log" for name in SERVICES}, sorted(logs)  # every service's log is read
    for name, text in logs.items():
        assert secured_nats.passwords[name.removesuffix(".log")] not in text, name

    # the monitoring team follows the same run with plain nats-py, as examples/subscribe_run.py does
    printed = subscribe_run("run-secured", secured_nats)
    assert printed.returncode == 0, printed.stderr
    types = [line.split()[1] for line in printed.stdout.splitlines()]
    assert types[0] == RunStarted.TYPE and RunFinished.TYPE in types
    assert {MigrationsApplied.TYPE, TrafficShifted.TYPE} <= set(types), types
    sources = {line.split()[2] for line in printed.stdout.splitlines()}
    assert {f"/golive/{s}" for s in ("coordinator", "migrator", "prober", "traffic")} <= sources
    assert secured_nats.violations() == []  # nothing any of them needed was refused
