"""The NATS permission matrix: every user of deploy/nats.conf × every operation it must not do, refused by a real
nats-server started with that very file (the ``secured_nats`` fixture of tests/test_nats_permissions.py).

Forbidden to everyone: changing, purging or deleting a stream (or a message of it, the audit log), deleting or
taking over another user's durable consumer, reading another user's replies (each user has its own inbox prefix,
GOLIVE_NATS_INBOX_PREFIX), publishing another service's events, dead letters or commands, writing a KV bucket that
is not its own. Each row is one (user, operation); a refusal is the server's permissions violation, or, for a
request the subject allows but the server turns down, an error answer and the consumer left as it was.
"""

from __future__ import annotations

import json

import pytest
from nats.js.api import ConsumerConfig

from shared.settings import Settings
from shared.subjects import SERVICES
from tests.test_nats_permissions import ROOT, USERS, Client, secured_nats, streams_exist  # noqa: F401 (fixture)

RUN = "run-matrix"
CMD, EVT, DLQ = ROOT.command_stream, ROOT.event_stream, ROOT.dead_letter_stream
LEASES, LEDGER = "GOLIVE_LEASES", "GOLIVE_NOTIFICATIONS"
STREAMS = (CMD, EVT, DLQ, f"KV_{LEASES}", f"KV_{LEDGER}")

# every durable consumer golive runs, with its owner: (stream, name, filter) -> user
DURABLES = {
    **{(CMD, s, ROOT.commands_of(s)): s for s in SERVICES if s != "notifier"},
    (EVT, "coordinator-events", ROOT.all_events): "coordinator",
    (EVT, "coordinator-watch", ROOT.all_events): "coordinator",
    (EVT, "notifier-events", ROOT.all_events): "notifier",
}
# whose commands each user may send (everything else is forbidden)
COMMANDS_TO = {"coordinator": {"migrator", "prober", "traffic"}, "operator": {"coordinator"}}
KV_OWNER = {LEASES: "coordinator", LEDGER: "notifier"}


def inbox_prefix(user: str) -> str:
    """The private inbox prefix deploy/nats.conf lets ``user`` (and only it) subscribe under."""
    return f"_INBOX_{user}"


def forbidden_publishes(user: str) -> list[str]:
    """Every subject ``user`` must never publish on (each one a row of the matrix)."""
    subjects = []
    for stream in STREAMS:  # the streams' settings and contents are the operator's, not any golive user's
        subjects += [f"$JS.API.STREAM.{verb}.{stream}" for verb in ("UPDATE", "DELETE", "PURGE", "MSG.DELETE")]
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
        subjects.append(f"{ROOT.root}.ctl.prober.{RUN}")
    subjects += [f"$KV.{bucket}.forged" for bucket, owner in KV_OWNER.items() if owner != user]
    if user == "monitoring":  # reads only: not even its own kind of consumer on the command queue
        subjects += [f"$JS.API.CONSUMER.CREATE.{CMD}", f"$JS.API.STREAM.CREATE.{EVT}"]
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


# Users whose replay of the event log (shared/event_log.py: nats-py's ordered consumer) still needs the unnamed
# ephemeral-create subject; the report of this change says why and what would close it.
ORDERED_READERS = {"coordinator", "notifier", "operator"}


@pytest.mark.parametrize("user", sorted(set(USERS) - ORDERED_READERS))
async def test_a_reader_cannot_take_over_the_coordinators_durable_by_naming_it_in_an_ephemeral_request(
        secured_nats, user):
    """The server turns down a durable name on ``$JS.API.CONSUMER.CREATE.<stream>`` (ephemerals only) but takes a
    ``name`` there as an update of the consumer of that name: whoever may send that request could narrow
    coordinator-events' filter and freeze every run. Monitoring and the services that read no log do not get it:
    monitoring names its consumers in the subject, where the durables' names are denied."""
    await streams_exist(secured_nats)
    async with Client(secured_nats, "coordinator") as coordinator:
        await coordinator.js.add_consumer(EVT, ConsumerConfig(
            name="coordinator-events", durable_name="coordinator-events", filter_subject=ROOT.all_events,
            ack_policy="explicit", deliver_policy="new"))
    narrowed = {"deliver_policy": "new", "ack_policy": "explicit", "filter_subject": f"{ROOT.root}.evt.none.>"}
    unnamed, own_name = f"$JS.API.CONSUMER.CREATE.{EVT}", f"$JS.API.CONSUMER.CREATE.{EVT}.{user}-mine"
    hijacks = [(unnamed, {"durable_name": "coordinator-events", **narrowed}),
               (unnamed, {"name": "coordinator-events", **narrowed}),
               # a name of its own in the subject, another's in the request
               (own_name, {"name": "coordinator-events", **narrowed}),
               (own_name, {"name": f"{user}-mine", "durable_name": "coordinator-events", **narrowed})]
    async with Client(secured_nats, user) as client:
        for subject, config in hijacks:
            body = json.dumps({"stream_name": EVT, "config": config}).encode()
            reply = client.nc.new_inbox()
            answers = await client.nc.subscribe(reply)
            await client.nc.publish(subject, body, reply=reply)
            try:
                answer = json.loads((await answers.next_msg(timeout=2)).data)
            except TimeoutError:  # no answer: the publish was refused by the permissions
                await client.refused("publish", subject)
            else:  # turned down, or a consumer of the subject's name made: never the one the request named
                assert "error" in answer or answer["name"] == f"{user}-mine", (user, subject, config, answer)
            await answers.unsubscribe()
    async with Client(secured_nats, "coordinator") as coordinator:
        info = await coordinator.js.consumer_info(EVT, "coordinator-events")
    assert info.config.filter_subject == ROOT.all_events and info.config.durable_name == "coordinator-events"
