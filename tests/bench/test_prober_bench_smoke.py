"""Smoke test for bench/prober_vs_pgbench.py: a tiny run must work and print its table and verdict line.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(r"^prober_vs_pgbench: ratio [0-9.]+ \(target [0-9.]+\): (met|missed)$")


def test_prober_vs_pgbench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "prober_vs_pgbench.py"), "--rate", "50", "--block", "1",
         "--blocks", "1", "--max-blocks", "1", "--users", "200", "--warmup", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert lines and VERDICT.match(lines[-1]), done.stdout + done.stderr
    for query in ("stripe_upsert", "netvisor_pick", "review_list", "signup_exists"):
        assert re.search(rf"^{query}\s+pgbench\s+[0-9.]+", done.stdout, re.M), done.stdout
        assert re.search(rf"^{query}\s+prober\s+[0-9.]+", done.stdout, re.M), done.stdout
