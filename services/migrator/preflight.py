"""Preflight: checks before the first statement runs.

- A transaction-mode pooler (PgBouncer in transaction mode, Supabase's pooler on port 6543) is refused:
  session settings (lock_timeout, the advisory lock) do not survive from one statement to the next
  there, and CREATE INDEX CONCURRENTLY needs one session from start to end.
- Transactions older than the plan's threshold on this database would make a build wait (it waits for
  every older snapshot): they are listed, and per the plan the migrator waits, fails or continues.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import conninfo

from golive.services.migrator.query_text import MAX_READ_CHARS, shown_query
from golive.shared.events import OldTransaction

TRANSACTION_POOLER_PORTS = {"6543"}  # Supabase's transaction-mode pooler (session mode and direct: 5432)
USE_INSTEAD = ("use the direct connection or a session-mode pooler (Supabase: port 5432, "
               "db.<project>.supabase.co or the session pooler); CREATE INDEX CONCURRENTLY needs one session throughout")

_OLD_TRANSACTIONS = """
SELECT pid, extract(epoch FROM now() - xact_start)::float8, coalesce(state, ''), left(coalesce(query, ''), %s)
FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()
  AND backend_type = 'client backend' AND now() - xact_start > make_interval(secs => %s)
ORDER BY xact_start
"""


class PreflightError(ValueError):
    """The database cannot be migrated safely as connected or as it is now."""


def pooler_problem(url: str) -> str | None:
    """Why ``url`` points at a transaction-mode pooler, or None. Pure: reads the URL only."""
    if re.search(r"[?&]pgbouncer=true\b", url, re.IGNORECASE):
        return f"the URL says pgbouncer=true (a transaction-mode pooler): {USE_INSTEAD}"
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return None  # connecting will report the malformed URL
    port = str(params.get("port") or "5432").split(",")[0]
    if port in TRANSACTION_POOLER_PORTS:
        return f"port {port} is a transaction-mode pooler (Supabase's pooler in transaction mode): {USE_INSTEAD}"
    return None


async def session_problem(conn: psycopg.AsyncConnection, application_name: str) -> str | None:
    """Whether the session survives from one statement to the next (it does not behind a transaction pooler)."""
    first = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    second = await (await conn.execute("SELECT pg_backend_pid(), current_setting('application_name')")).fetchone()
    if first[0] != second[0] or second[1] != application_name[:63]:  # NAMEDATALEN truncates
        return f"session settings do not persist between statements (a transaction-mode pooler?): {USE_INSTEAD}"
    return None


async def old_transactions(conn: psycopg.AsyncConnection, older_than_s: float) -> list[OldTransaction]:
    """Transactions on this database open for longer than ``older_than_s`` (a build would wait for them)."""
    rows = await (await conn.execute(_OLD_TRANSACTIONS, (MAX_READ_CHARS, older_than_s))).fetchall()
    return [OldTransaction(pid=r[0], age_s=round(r[1], 1), state=r[2], query=shown_query(r[3])) for r in rows]


def describe(transactions: list[OldTransaction]) -> str:
    return "; ".join(f"pid {t.pid} open {t.age_s:.0f}s ({t.state}): {t.query[:120]}" for t in transactions)
