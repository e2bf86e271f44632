"""A real 3-node NATS cluster on loopback (JetStream, R3) and golive's five services as processes connected to it."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.nats_server import EmbeddedNatsCluster
from golive.stack.service_processes import DATABASE_ENV, WEBHOOK_ENV, ServiceProcesses, service_env, wait_until_ready

REPLICAS = 3


@pytest.fixture
def cluster():
    """Three nats-servers routed to each other, JetStream meta leader elected; stopped (by PID) after the test."""
    # short paths: each node's store and config live here (not under pytest's deep basetemp)
    data_dir = Path(tempfile.mkdtemp(prefix="golive-cluster-"))
    try:
        with EmbeddedNatsCluster(data_dir, size=3) as nodes:
            yield nodes
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def cluster_settings(cluster, tmp_path) -> Settings:
    """Settings as an operator would give them: every node in GOLIVE_NATS_URL, streams and buckets R3."""
    return Settings(nats_url=cluster.url, stream_replicas=REPLICAS, subject_root=f"t{secrets.token_hex(5)}",
                    state_dir=tmp_path / "state", artifacts_dir=tmp_path / "artifacts", graceful_timeout_s=5.0)


@pytest.fixture
def cluster_env(cluster_settings, database_url, webhook) -> dict[str, str]:
    s = cluster_settings
    return service_env(s.resolved_nats_url(), s.state_dir, {
        "GOLIVE_STREAM_REPLICAS": str(s.stream_replicas),
        "GOLIVE_SUBJECT_ROOT": s.subject_root,
        "GOLIVE_GRACEFUL_TIMEOUT_S": str(s.graceful_timeout_s),
        # the default lease TTL (15 s), as on a production cluster: a leader election after a node's loss takes a few
        # seconds, during which a coordinator cannot renew its lease
        "GOLIVE_ARTIFACTS_DIR": str(s.artifacts_dir),
        DATABASE_ENV: database_url,
        WEBHOOK_ENV: webhook.url,
    })


@pytest.fixture
def cluster_services(request, cluster_settings, cluster_env, tmp_path) -> ServiceProcesses:
    """The five services, each its own process, connected to the cluster and ready; stopped after the test (their
    logs and the nodes' printed when it failed)."""
    procs = ServiceProcesses(cluster_env, tmp_path / "logs").start()
    try:
        asyncio.run(wait_until_ready(cluster_settings, SERVICES, procs, timeout_s=60.0))
        yield procs
    finally:
        procs.stop()
        if any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call")):
            for log in sorted((tmp_path / "logs").glob("*.log")):
                print(f"----- {log.name} (last lines) -----\n" + "\n".join(log.read_text().splitlines()[-40:]))
