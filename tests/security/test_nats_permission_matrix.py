"""The NATS permission matrix: every user of deploy/nats.conf × every operation it must not do, refused by a real
nats-server started with that very file (the ``secured_nats`` fixture of tests/conftest.py).

Forbidden to everyone: changing, purging or deleting a stream (or a message of it, the audit log), deleting or
taking over another user's durable consumer by any subject (the unnamed create subject, which the server takes
with a ``name`` in the body as an update of that consumer, is nobody's), reading another user's replies (each user
has its own inbox prefix,
GOLIVE_NATS_INBOX_PREFIX), publishing another service's events, dead letters or commands, writing a KV bucket that
is not its own. Each row is one (user, operation); a refusal is the server's permissions violation, or, for a
request the subject allows but the server turns down, an error answer and the consumer left as it was.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from golive.services.coordinator.history import RunHistory
from golive.shared.run_history import read_runs, run_key, runs_bucket
from golive.shared.run_summary import RunSummary
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from tests.secured_nats import ROOT, USERS, Client, streams_exist

RUN = "run-matrix"
CMD, EVT, DLQ = ROOT.command_stream, ROOT.event_stream, ROOT.dead_letter_stream
LEASES, LEDGER, HISTORY = "GOLIVE_LEASES", "GOLIVE_NOTIFICATIONS", runs_bucket(ROOT.root)
STREAMS = (CMD, EVT, DLQ, f"KV_{LEASES}", f"KV_{LEDGER}", f"KV_{HISTORY}")

# every durable consumer golive runs, with its owner: (stream, name, filter) -> user
DURABLES = {
    **{(CMD, s, ROOT.commands_of(s)): s for s in SERVICES if s != "notifier"},
    (EVT, "coordinator-events", ROOT.all_events): "coordinator",
    (EVT, "coordinator-watch", ROOT.all_events): "coordinator",
    (EVT, "notifier-events", ROOT.all_events): "notifier",
}
DELIVER = {CMD: DeliverPolicy.ALL, EVT: DeliverPolicy.NEW}  # as shared/bus.py creates the durables
# whose commands each user may send (everything else is forbidden)
COMMANDS_TO = {"coordinator": {"migrator", "prober", "traffic"}, "operator": {"coordinator"}}
KV_OWNER = {LEASES: "coordinator", LEDGER: "notifier", HISTORY: "coordinator"}


def inbox_prefix(user: str) -> str:
    """The private inbox prefix deploy/nats.conf lets ``user`` (and only it) subscribe under."""
    return f"_INBOX_{user}"


def forbidden_publishes(user: str) -> list[str]:
    """Every subject ``user`` must never publish on (each one a row of the matrix)."""
    subjects = []
    for stream in STREAMS:  # the streams' settings and contents are the operator's, not any golive user's
        subjects += [f"$JS.API.STREAM.{verb}.{stream}" for verb in ("UPDATE", "DELETE", "PURGE", "MSG.DELETE")]
        # a consumer without a name in the subject: the server takes a name in the body as an update of that consumer
        subjects.append(f"$JS.API.CONSUMER.CREATE.{stream}")
    for (stream, name, filter_subject), owner in DURABLES.items():
        if owner == user:
            continue
        subjects += [
            f"$JS.API.CONSUMER.DELETE.{stream}.{name}",  # monitoring deleting coordinator-events froze every run
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter_subject}",  # a durable under another's name
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}",  # taking its messages
            f"$JS.ACK.{stream}.{name}.1.1.1.1.0",
        ]
    for source in (*SERVICES, "cli"):
        if source != user:
            subjects += [ROOT.event(RUN, source, "forged"), ROOT.dead_letter(source)]
    subjects += [ROOT.command(s, "forged") for s in SERVICES if s not in COMMANDS_TO.get(user, set())]
    if user != "coordinator":
        subjects.append(ROOT.stop_probes(RUN))
    subjects += [f"$KV.{bucket}.forged" for bucket, owner in KV_OWNER.items() if owner != user]
    if user == "monitoring":  # reads only: not even a stream of its own
        subjects += [f"$JS.API.STREAM.CREATE.{EVT}"]
    return subjects


def forbidden_subscriptions(user: str) -> list[str]:
    """Every inbox ``user`` must not read: the shared one of old, and each other user's."""
    return ["_INBOX.>", "_INBOX.*", *(f"{inbox_prefix(other)}.>" for other in USERS if other != user)]


def test_each_user_gets_its_own_inbox_prefix_by_default():
    for user in USERS:
        assert Settings(nats_url="nats://127.0.0.1:1", nats_user=user).inbox_prefix() == inbox_prefix(user)
        assert Settings(nats_url=f"nats://{user}:secret@127.0.0.1:1").inbox_prefix() == inbox_prefix(user)
    assert Settings(nats_url="nats://127.0.0.1:1").inbox_prefix() == "_INBOX"
    assert Settings(nats_url="nats://127.0.0.1:1", nats_user="coordinator",
                    nats_inbox_prefix="_INBOX_blue").inbox_prefix() == "_INBOX_blue"


@pytest.mark.parametrize("user", USERS)
async def test_the_server_refuses_every_forbidden_operation_of_each_user(secured_nats, user):
    await streams_exist(secured_nats)
    publishes, subscriptions = forbidden_publishes(user), forbidden_subscriptions(user)
    async with Client(secured_nats, user) as client:
        for subject in publishes:
            await client.nc.publish(subject, b"{}")
        for subject in subscriptions:
            await client.nc.subscribe(subject)
        for subject in publishes:
            await client.refused("publish", subject)
        for subject in subscriptions:
            await client.refused("subscription", subject)


def narrowed(stream: str, name: str) -> tuple[str, dict]:
    """A filter that would starve durable ``name`` of all it reads, and a config that sets it (with other limits):
    what cannot be updated (the deliver and ack policies) as the owner made it, so the server would take it."""
    narrow = f"{ROOT.root}.evt.none.>" if stream == EVT else f"{ROOT.root}.cmd.none.x"
    return narrow, {"filter_subject": narrow, "ack_policy": "explicit", "deliver_policy": DELIVER[stream].value,
                    "max_deliver": 1, "description": "hijacked"}


def hijacks(user: str, stream: str, name: str) -> list[tuple[str, dict]]:
    """Every request by which ``user`` could create, change or take durable ``name``: each subject a consumer can
    be created on, with the name in the subject, in the body, or both."""
    narrow, config = narrowed(stream, name)
    mine = f"{user}-mine"
    return [
        (f"$JS.API.CONSUMER.CREATE.{stream}", {"durable_name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}", {"name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{name}", {"name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{name}", {"name": name, "durable_name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{narrow}", {"name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{ROOT.all_events if stream == EVT else ROOT.commands_of(name)}",
         {"name": name, **config, "filter_subject": ROOT.all_events if stream == EVT else ROOT.commands_of(name)}),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}", {"durable_name": name, **config}),
        # a name of its own in the subject, another's in the request
        (f"$JS.API.CONSUMER.CREATE.{stream}.{mine}.{narrow}", {"name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{mine}.{narrow}", {"name": mine, "durable_name": name, **config}),
        (f"$JS.API.CONSUMER.CREATE.{stream}.{mine}", {"name": mine, "durable_name": name, **config}),
    ]


async def answer_or_refusal(client: Client, subject: str, body: dict) -> dict | None:
    """The server's answer to the request ``body`` on ``subject``, or None when it refused the publish."""
    reply = client.nc.new_inbox()
    answers = await client.nc.subscribe(reply, max_msgs=1)
    await client.nc.publish(subject, json.dumps(body).encode(), reply=reply)
    answered = asyncio.ensure_future(answers.next_msg(timeout=30))
    refused = asyncio.ensure_future(client.refused("publish", subject))
    try:
        done, _ = await asyncio.wait({answered, refused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (answered, refused):
            waiting.cancel()
    return json.loads(answered.result().data) if answered in done else None


async def durables_exist(secured) -> dict[tuple[str, str], ConsumerConfig]:
    """Every durable of DURABLES, created by its owner as the services do; their configs as the server keeps them."""
    configs = {}
    for (stream, name, filter_subject), owner in DURABLES.items():
        async with Client(secured, owner) as client:
            info = await client.js.add_consumer(stream, ConsumerConfig(
                name=name, durable_name=name, filter_subject=filter_subject, ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DELIVER[stream], ack_wait=30.0))
        configs[(stream, name)] = info.config
    return configs


@pytest.mark.parametrize("user", USERS)
async def test_no_user_can_create_or_change_another_users_durable_consumer_by_any_subject(secured_nats, user):
    """Whoever may change ``coordinator-events``' filter freezes every run; the unnamed create subject took a
    ``name`` in the body as such an update, so every user that replayed the log with nats-py's ordered consumer
    could. Each request is refused by the permissions, or turned down by the server, or makes a consumer of the
    name the user's own subject gives; every durable is left exactly as its owner made it."""
    await streams_exist(secured_nats)
    before = await durables_exist(secured_nats)
    outcomes = []
    async with Client(secured_nats, user) as client:
        for (stream, name, _), owner in DURABLES.items():
            if owner == user:
                continue
            for subject, config in hijacks(user, stream, name):
                answer = await answer_or_refusal(client, subject, {"stream_name": stream, "config": config})
                if answer is not None and "error" not in answer and answer.get("name") != f"{user}-mine":
                    outcomes.append((subject, config, answer))
    assert outcomes == []
    async with Client(secured_nats, "coordinator") as reader:
        after = {key: (await reader.js.consumer_info(*key)).config for key in before if key[0] == EVT}
    async with Client(secured_nats, "operator") as reader:
        after |= {key: (await reader.js.consumer_info(*key)).config for key in before if key[0] == CMD}
    assert after == before


async def test_only_the_coordinator_writes_the_run_history_and_the_operator_reads_it(secured_nats):
    """`golive status`, `report --weekly` and `watch` (the operator) list runs from the run history; a summary written
    by anyone but the coordinator would be a forged line in them."""
    await streams_exist(secured_nats)
    summary = RunSummary(run_id=RUN, plan="skeleton", deploy_id="dpl_new", started_at=datetime.now(UTC))
    async with Client(secured_nats, "coordinator") as coordinator:
        await (await RunHistory.open(coordinator.js, ROOT)).put_run(summary)
    async with Client(secured_nats, "operator") as operator:
        assert await read_runs(operator.js, ROOT.root) == [summary]
        forged = f"$KV.{HISTORY}.{run_key(RUN)}"
        await operator.nc.publish(forged, summary.model_copy(update={"state": "succeeded"}).model_dump_json().encode())
        await operator.refused("publish", forged)
        assert await read_runs(operator.js, ROOT.root) == [summary]
