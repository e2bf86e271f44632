"""Fixtures of the prober tests: a real HTTP server process, a PostgreSQL of our own (to restart it and to
stream to a replica), and shorthand for building RunProbe commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from golive.shared.commands import LoadSpec, RunProbe, SqlProbeSpec, Thresholds
from golive.stack.postgres import EmbeddedPostgres
from golive.stack.process import free_port, stop_process, wait_for_port
from tests.harness import REPO

DB_ENV = "PROBER_TEST_DATABASE_URL"


def sql_command(query: str, *, duration_s: float = 0.5, concurrency: int = 1, timeout_ms: int = 2000, params=None,
                thresholds: Thresholds = Thresholds(), load: LoadSpec = LoadSpec(), **spec) -> RunProbe:
    return RunProbe(
        probe=SqlProbeSpec(name=spec.pop("name", "q"), database_url_env=DB_ENV, query=query, timeout_ms=timeout_ms,
                           params=params or [], **spec),
        duration_s=duration_s, concurrency=concurrency, thresholds=thresholds, load=load,
    )


class HttpTarget:
    """The process running tests/prober/http_target.py, on 127.0.0.1."""

    def __init__(self, port: int, proc: subprocess.Popen) -> None:
        self.port, self.proc = port, proc
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def stall(self, seconds: float) -> None:
        httpx.post(self.url(f"/stall?seconds={seconds}"), timeout=5).raise_for_status()


@contextmanager
def listening(args: list[str], port: int, what: str) -> Iterator[subprocess.Popen]:
    """``args`` as a child process (in the repository), once it listens on ``port``; stopped on the way out."""
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 15, proc, what)
        yield proc
    finally:
        stop_process(proc, 5)
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture
def http_target() -> HttpTarget:
    port = free_port()
    with listening([sys.executable, "-m", "tests.prober.http_target", str(port)], port, "the test HTTP server") as proc:
        yield HttpTarget(port, proc)


@pytest.fixture(scope="module")
def own_postgres():
    """A PostgreSQL server of this module's own (the tests restart it and stream from it), on 127.0.0.1."""
    data_dir = Path(tempfile.mkdtemp(prefix="golive-prober-pg-"))
    server = EmbeddedPostgres(data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until(condition, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


class PgBouncer:
    """A pgbouncer process on 127.0.0.1 in front of the test PostgreSQL (transaction pooling, trust)."""

    def __init__(self, port: int, pool_size: int) -> None:
        self.port, self.pool_size = port, pool_size

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("pgbouncer")


@pytest.fixture
def pgbouncer(postgres_admin_url) -> PgBouncer:
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        pytest.fail("pgbouncer is not installed: `apt-get install pgbouncer` (Debian, Ubuntu) or `brew install pgbouncer`")
    server = psycopg.conninfo.conninfo_to_dict(postgres_admin_url)
    port, pool_size = free_port(), 4
    folder = Path(tempfile.mkdtemp(prefix="golive-pgbouncer-"))
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""[databases]
* = host={server.get("host", "127.0.0.1")} port={server.get("port", 5432)}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
""")
    folder.chmod(0o755)  # as root, pgbouncer runs as nobody (it refuses root) and must read its files
    for file in folder.iterdir():
        file.chmod(0o644)
    args = [binary, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(folder / "pgbouncer.ini")]
    try:
        with listening(args, port, "pgbouncer"):
            yield PgBouncer(port, pool_size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def streaming_replica(own_postgres):
    """A streaming replica of ``own_postgres`` (golive/stack/replica.py), named ``replica1`` in pg_stat_replication;
    a test that pauses its replay resumes it."""
    from golive.stack.replica import StreamingReplica

    folder = Path(tempfile.mkdtemp(prefix="golive-prober-replica-"))
    folder.chmod(0o755)  # as root the replica runs as the embedded server's system user, which must reach its data
    try:
        with StreamingReplica(own_postgres, folder / "replica") as replica:
            yield replica
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def replayed_everything(primary_url: str, replica_url: str) -> bool:
    """Whether the replica has replayed all the WAL the primary has written by now."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        (written,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
    with psycopg.connect(replica_url, autocommit=True) as conn:
        (caught_up,) = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (written,)).fetchone()
    return bool(caught_up)
