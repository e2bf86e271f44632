"""golive on a NATS cluster: three nats-servers on loopback, streams and KV buckets R3, the five services and
`golive run` given every node in GOLIVE_NATS_URL. The node most of them are connected to is killed -9 in the middle
of a run: they reconnect to the others, the run completes, and nothing is lost or sent twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing

import nats
import pytest

from golive.services.coordinator.lease import leases_bucket
from golive.services.notifier.moments import observe
from golive.services.notifier.routing import routes_for
from golive.shared.bus import connect_options
from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.shared.events import PhaseStarted, RunFinished
from golive.stack.nats_server import ClusterNode, EmbeddedNatsCluster
from tests.builders import skeleton_plan
from tests.cluster.conftest import REPLICAS
from tests.harness import start_run, wait_for_output
from tests.notifier.notifier_io import HOOK_SINK, delivered, until

pytestmark = pytest.mark.e2e

STEPS = ["migrate", "smoke:stripe_recent", "stage1:shift:10", "stage1:hold", "stage2:shift:50", "stage2:hold",
         "stage3:shift:100", "stage3:hold"]


def busiest_node(cluster: EmbeddedNatsCluster) -> ClusterNode:
    """The running node with the most client connections (the services', the CLI's): the one to kill."""
    return max((n for n in cluster.nodes if n.running), key=lambda n: cluster.monitor(n, "/connz")["num_connections"])


async def run_events(settings, run_id: str) -> list[Envelope]:
    nc = await nats.connect(**await connect_options(settings))
    try:
        async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run(run_id))) as feed:
            return [envelope async for _seq, envelope in feed]
    finally:
        await nc.close()


async def replicas_of(settings) -> dict[str, int]:
    """How many replicas each of golive's streams, and each KV bucket, has on the cluster."""
    nc = await nats.connect(**await connect_options(settings))
    try:
        js = nc.jetstream()
        return {info.config.name: info.config.num_replicas for info in await js.streams_info()}
    finally:
        await nc.close()


def expected_messages(events: list[Envelope]) -> Counter[tuple[str, str]]:
    """Each (event id, moment kind) the notifier owes the hook sink for this run's events: once each."""
    view, owed = None, Counter()
    for envelope in events:
        view, moments = observe(view, envelope)
        for moment in moments:
            if routes_for(view.notifications, moment.kind):
                owed[(moment.event.id, moment.kind)] = 1
    return owed


def test_a_run_completes_on_a_three_node_cluster_when_the_busiest_node_is_killed_mid_run(
    cluster, cluster_settings, cluster_env, cluster_services, database_url, webhook, tmp_path
):
    plan = skeleton_plan(tmp_path, hold="4s", edit=lambda p: p["notifications"].update(sinks=HOOK_SINK))
    run = start_run(plan, "run-cluster", cluster_env, "--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old")
    try:
        wait_for_output(run, "stage1:hold", timeout_s=90)  # the canary's first hold runs: the run is mid-way
        victim = busiest_node(cluster)
        connected = cluster.monitor(victim, "/connz")["num_connections"]
        cluster.kill(victim)
        out, err = run.communicate(timeout=150)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)

    assert connected >= 2 and not victim.running  # services were connected to the node that died
    assert run.returncode == 0, out + err
    assert "run succeeded" in out
    assert cluster_services.exited() == {}  # no service died with the node: each reconnected to another

    events = asyncio.run(run_events(cluster_settings, "run-cluster"))
    assert [i for i, n in Counter(e.id for e in events).items() if n > 1] == []  # every event once
    assert [e.data.step for e in events if isinstance(e.data, PhaseStarted)] == STEPS
    finished = [e.data for e in events if isinstance(e.data, RunFinished)]
    assert [f.outcome for f in finished] == ["succeeded"]

    owed = expected_messages(events)
    assert len(owed) == 5  # run started, three stages passed, run succeeded
    assert asyncio.run(until(webhook, lambda: set(delivered(webhook)) >= set(owed), timeout_s=60)), delivered(webhook)
    assert delivered(webhook) == owed  # each exactly once

    replicas = asyncio.run(replicas_of(cluster_settings))
    root = cluster_settings.subject_root.upper()
    golive_streams = {name: r for name, r in replicas.items() if name.startswith(root) or f"_{root}_" in name}
    assert {f"{root}_CMD", f"{root}_EVT", f"{root}_DLQ", f"KV_{leases_bucket(cluster_settings.subject_root)}",
            f"KV_{root}_NOTIFICATIONS"} <= set(golive_streams), golive_streams
    assert set(golive_streams.values()) == {REPLICAS}, golive_streams
