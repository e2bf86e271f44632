"""Smoke test for bench/migrator_vs_psql.py: a tiny run must build through both sides and print its verdict.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed). It uses the
test session's PostgreSQL (the bench creates and drops a database of its own there).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(r"^migrator_vs_psql: ratio [0-9.]+ \(target [0-9.]+\): (met|missed)$")


def test_migrator_vs_psql_smoke(postgres_admin_url) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "migrator_vs_psql.py"), "--rows", "5000", "--rounds", "1",
         "--database-url", postgres_admin_url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert lines and VERDICT.match(lines[-1]), done.stdout + done.stderr
    assert "progress trace of the last migrator build" in done.stdout
    assert re.search(r"psql -c +median [0-9.]+s", done.stdout)
