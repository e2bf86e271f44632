"""The runbook's tables, seeded for `golive up`, the demo and the tests."""

from __future__ import annotations

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS stripe_events (
    id bigserial PRIMARY KEY,
    stripe_id text NOT NULL,
    type text NOT NULL,
    created_at timestamptz NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'
)
"""


def seed(url: str, rows: int = 50_000) -> None:
    """Create the tables and fill them once (idempotent: a filled table is left alone)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        if conn.execute("SELECT EXISTS (SELECT 1 FROM stripe_events)").fetchone()[0]:
            return
        conn.execute(
            """
            INSERT INTO stripe_events (stripe_id, type, created_at, payload)
            SELECT 'evt_' || g, (ARRAY['charge.succeeded','invoice.paid','customer.created'])[1 + g %% 3],
                   now() - (g || ' seconds')::interval, jsonb_build_object('n', g)
            FROM generate_series(1, %s) AS g
            """,
            (rows,),
        )
        conn.execute("ANALYZE stripe_events")


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE ``name`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
