"""The runbook's tables, seeded for `golive up`, the demo and the tests.

stripe_events (webhooks, upserted by stripe_id), auth.users (Supabase's users; signups check an email),
review_items (a user's reviews, listed newest first) and netvisor_queue (accounting jobs, picked oldest
pending first). ``RUNBOOK_QUERIES`` are the runbook's four named probe queries against them.
"""

from __future__ import annotations

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS stripe_events (
    id bigserial PRIMARY KEY,
    stripe_id text NOT NULL,
    type text NOT NULL,
    created_at timestamptz NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS stripe_events_stripe_id_key ON stripe_events (stripe_id);
CREATE SCHEMA IF NOT EXISTS auth;
CREATE TABLE IF NOT EXISTS auth.users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS review_items (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL,
    status text NOT NULL,
    body text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS netvisor_queue (
    id bigserial PRIMARY KEY,
    status text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    picked_at timestamptz
);
"""

# The runbook's db_performance_check queries, with how their parameters are drawn (plan probe fields).
RUNBOOK_QUERIES: dict[str, dict] = {
    "stripe_upsert": {
        "query": "INSERT INTO stripe_events (stripe_id, type, created_at, payload) VALUES (%s, 'invoice.paid', now(), '{}') "
                 "ON CONFLICT (stripe_id) DO UPDATE SET payload = EXCLUDED.payload, type = EXCLUDED.type",
        "params_from": {"kind": "sequence", "template": ["evt_probe_{n}"]},
    },
    "netvisor_pick": {
        "query": "UPDATE netvisor_queue SET status = 'processing', picked_at = now() WHERE id = ("
                 "SELECT id FROM netvisor_queue WHERE status = 'pending' ORDER BY created_at LIMIT 1 "
                 "FOR UPDATE SKIP LOCKED) RETURNING id",
    },
    "review_list": {
        "query": "SELECT id, status, created_at FROM review_items WHERE user_id = %s ORDER BY created_at DESC LIMIT 20",
        "params_from": {"kind": "sample", "query": "SELECT id FROM auth.users ORDER BY id LIMIT 1000"},
    },
    "signup_exists": {
        "query": "SELECT EXISTS (SELECT 1 FROM auth.users WHERE email = %s)",
        "params_from": {"kind": "sample", "query": "SELECT email FROM auth.users ORDER BY id LIMIT 1000"},
    },
}


def seed(url: str, rows: int = 50_000) -> None:
    """Create the tables and fill them once (idempotent: a filled table is left alone).

    ``rows`` stripe events; a tenth as many users, as many reviews as users, and a twentieth as many
    queued jobs (one in twenty pending: a queue the workers keep up with)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        fill_runbook_tables(conn, stripe_events=rows, users=max(10, rows // 10), reviews=max(10, rows // 10),
                            queue=max(10, rows // 20))


DEMO_ROWS = 100_000


def seed_demo(url: str, rows: int = DEMO_ROWS) -> None:
    """The demo's database: ``rows`` rows in each of the four runbook tables (the runbook's indexes are worth
    building only on tables of that size). generate_series in the server: ~2 s for 100,000 rows each."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        fill_runbook_tables(conn, stripe_events=rows, users=rows, reviews=rows, queue=rows)


def fill_runbook_tables(conn: psycopg.Connection, *, stripe_events: int, users: int, reviews: int, queue: int) -> None:
    """Fill each empty runbook table with the given number of rows (a filled table is left alone)."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM stripe_events)").fetchone()[0]:
        conn.execute(
            """
            INSERT INTO stripe_events (stripe_id, type, created_at, payload)
            SELECT 'evt_' || g, (ARRAY['charge.succeeded','invoice.paid','customer.created'])[1 + g %% 3],
                   now() - (g || ' seconds')::interval, jsonb_build_object('n', g)
            FROM generate_series(1, %s) AS g
            """,
            (stripe_events,),
        )
        conn.execute("ANALYZE stripe_events")
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM auth.users)").fetchone()[0]:
        conn.execute(
            "INSERT INTO auth.users (email, created_at) SELECT 'user' || g || '@example.com', now() - (g || ' minutes')::interval "
            "FROM generate_series(1, %s) AS g",
            (users,),
        )
        conn.execute("ANALYZE auth.users")
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM review_items)").fetchone()[0]:
        conn.execute(
            "INSERT INTO review_items (user_id, status, body, created_at) "
            "SELECT 1 + g %% %s, (ARRAY['open','approved','rejected'])[1 + g %% 3], 'review ' || g, "
            "now() - (g || ' minutes')::interval FROM generate_series(1, %s) AS g",
            (users, reviews),
        )
        conn.execute("ANALYZE review_items")
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM netvisor_queue)").fetchone()[0]:
        conn.execute(
            "INSERT INTO netvisor_queue (status, payload, created_at) "
            "SELECT CASE WHEN g %% 20 = 0 THEN 'pending' ELSE 'done' END, jsonb_build_object('invoice', g), "
            "now() - (g || ' seconds')::interval FROM generate_series(1, %s) AS g",
            (queue,),
        )
        conn.execute("ANALYZE netvisor_queue")


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE ``name`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
