"""Fixtures of the migrator tests: tables of 200k rows of their own, a blocking transaction, event capture.

The tables live in the per-test database (not the shared template), so builds take real time and each
test starts from a table with no index but its primary key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import psycopg
import pytest

from golive.services.migrator.runner import Context
from tests.migrator.migrator_db import Blocker, Recorder

BIG_ROWS = 200_000


@pytest.fixture
def big_url(database_url) -> str:
    """The test's database with ``big_events`` (200k rows, a ``key`` column, unique unless a test adds
    duplicates) and a small ``other_things`` table for transactions that touch something else."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big_events (id bigint PRIMARY KEY, key text NOT NULL, kind text NOT NULL, "
            "created_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO big_events SELECT g, 'k' || g, (ARRAY['charge','refund','payout'])[1 + g % 3], "
            f"now() - g * interval '1 second' FROM generate_series(1, {BIG_ROWS}) g"
        )
        conn.execute("CREATE TABLE other_things (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO other_things VALUES (1, 'one'), (2, 'two')")
        conn.execute("ANALYZE big_events")
    return database_url


@pytest.fixture
def blocker(big_url):
    """Start with ``blocker()``; every blocker is ended at teardown, also on failure."""
    started: list[Blocker] = []

    def start() -> Blocker:
        started.append(Blocker(big_url))
        return started[-1]

    yield start
    for b in started:
        b.end()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def context(big_url, recorder) -> Callable[..., Context]:
    def make(command_id: str | None = None, run_id: str = "run-migrator") -> Context:
        return Context(url=big_url, run_id=run_id, command_id=command_id or f"cmd-{secrets.token_hex(4)}",
                       applied_by="tests", emit=recorder.emit)

    return make
