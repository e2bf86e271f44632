"""Pointing golive at a NATS cluster: GOLIVE_NATS_URL as a comma-separated list of servers (credentials as nats-py
takes them, hidden in every line golive writes), and GOLIVE_STREAM_REPLICAS for what golive creates. What exists is
the operator's: a stream or bucket with other replicas or limits is kept as it is, and the differences are named."""

from __future__ import annotations

from dataclasses import replace

import nats
from nats.js.api import KeyValueConfig, StorageType

from golive.shared.buckets import open_bucket
from golive.shared.bus import connect_options, ensure_streams
from golive.shared.secrets import redact
from golive.shared.settings import Settings

PASSWORD = "s3cr3t-pw"


async def test_a_comma_separated_url_connects_to_every_server_of_the_list():
    settings = Settings(nats_url=" nats://10.0.0.1:4333 , 10.0.0.2:4333,tls://nats-3.example:4333,")

    options = await connect_options(settings)

    assert options["servers"] == ["nats://10.0.0.1:4333", "nats://10.0.0.2:4333", "tls://nats-3.example:4333"]


async def test_passwords_in_a_server_list_are_hidden_wherever_golive_shows_the_address():
    settings = Settings(nats_url=f"nats://golive:{PASSWORD}@10.0.0.1:4333,golive:{PASSWORD}@10.0.0.2:4333")

    shown = settings.shown_nats_url()  # as bus.ready and the CLI's "cannot reach NATS" print it

    assert shown == "nats://***@10.0.0.1:4333,nats://***@10.0.0.2:4333"
    assert PASSWORD not in redact(settings.resolved_nats_url())
    assert settings.inbox_prefix() == "_INBOX_golive"  # the user's own inbox, from the first URL
    assert (await connect_options(settings))["servers"][1] == f"nats://golive:{PASSWORD}@10.0.0.2:4333"


async def test_streams_and_buckets_are_created_with_the_replicas_setting_on_a_cluster(cluster, cluster_settings):
    assert await ensure_streams(cluster_settings) == {}

    nc = await nats.connect(**await connect_options(cluster_settings))
    try:
        js = nc.jetstream()
        subjects = cluster_settings.subjects
        for stream in (subjects.command_stream, subjects.event_stream, subjects.dead_letter_stream):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2, (stream, info.cluster)
        bucket = f"{subjects.root.upper()}_SOME"
        kv = await open_bucket(js, KeyValueConfig(bucket=bucket, history=1, storage=StorageType.FILE,
                                                  replicas=cluster_settings.stream_replicas))
        assert (await kv.status()).stream_info.config.num_replicas == 3
    finally:
        await nc.close()


async def test_an_operators_stream_and_bucket_are_kept_and_their_other_replicas_named(cluster, cluster_settings):
    subjects = cluster_settings.subjects
    nc = await nats.connect(**await connect_options(cluster_settings))
    try:
        js = nc.jetstream(timeout=30)  # the operator's own requests: a loaded machine's cluster may answer slowly
        # made by an operator before golive first ran: R1, a week's retention
        mine = subjects.stream_configs(replicas=1)[1]
        await js.add_stream(replace(mine, max_age=7 * 86400.0))
        await js.create_key_value(KeyValueConfig(bucket=f"{subjects.root.upper()}_SOME", history=1,
                                                 storage=StorageType.FILE, replicas=1))

        differences = await ensure_streams(cluster_settings)  # GOLIVE_STREAM_REPLICAS=3

        info = await js.stream_info(subjects.event_stream)
        assert info.config.num_replicas == 1 and info.config.max_age == 7 * 86400.0  # unchanged
        assert any(d.startswith("num_replicas: golive sets 3, the server has 1") for d in differences[mine.name])
        assert any(d.startswith("max_age:") for d in differences[mine.name]), differences
        assert (await js.stream_info(subjects.command_stream)).config.num_replicas == 3  # the missing one: created

        logged = _Log()
        kv = await open_bucket(js, KeyValueConfig(bucket=f"{subjects.root.upper()}_SOME", history=1,
                                                  storage=StorageType.FILE, replicas=3), logged)
        assert (await kv.status()).stream_info.config.num_replicas == 1
        assert logged.lines == [("kv.settings_differ", ["num_replicas: golive sets 3, the server has 1"])]
    finally:
        await nc.close()


class _Log:
    """A logger that keeps what it was told (the real structlog interface's warning)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, list[str]]] = []

    def warning(self, event: str, **fields) -> None:
        self.lines.append((event, fields["differences"]))


def test_a_token_in_the_urls_is_never_taken_for_a_user_nor_shown():
    token = "tok3n-value-42"
    settings = Settings(nats_url=f"nats://{token}@10.0.0.1:4333,nats://{token}@10.0.0.2:4333")

    assert settings.inbox_prefix() == "_INBOX"  # nats-py sends it as a token: no subject may carry it
    assert token not in settings.shown_nats_url()
