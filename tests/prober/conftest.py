"""Fixtures of the prober tests: a real HTTP server process, a PostgreSQL of our own (to restart it and to
stream to a replica), and shorthand for building RunProbe commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from golive.embedded import EmbeddedPostgres, free_port, wait_for_port
from shared.commands import LoadSpec, RunProbe, SqlProbeSpec, Thresholds
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


@pytest.fixture
def http_target() -> HttpTarget:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.prober.http_target", str(port)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 15, proc, "the test HTTP server")
        yield HttpTarget(port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


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
