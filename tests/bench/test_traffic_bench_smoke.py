"""Smoke test for bench/traffic_shift.py: a tiny run against a real Envoy, nats-server and traffic service must
work and print its verdict line.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(r"^traffic_shift: ratio [0-9.]+ \(target 1\.0\): (met|missed)$")


def test_traffic_shift_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "traffic_shift.py"), "--n", "5", "--warmup", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert lines and VERDICT.match(lines[-1]), done.stdout + done.stderr
    assert any(line.startswith("rollback  n    5") for line in lines), done.stdout
