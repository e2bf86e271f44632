"""Smoke test of bench/history.py: at a tiny size it records runs, measures both sides and prints its verdict line.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.harness import REPO


def test_history_benchmark_runs_at_a_tiny_size_and_prints_its_table_and_verdict() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "history.py"), "--sizes", "2,3", "--pad", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "3 runs recorded and measured (3 listed;" in done.stdout, done.stdout + done.stderr
    assert any(line.startswith("| 3 | ") for line in lines), done.stdout
    verdict = re.compile(r"^history: status [0-9.]+ s [0-9]+ MB, weekly [0-9.]+ s [0-9]+ MB at 3 runs "
                         r"\(reference ratio: status [0-9.]+, weekly [0-9.]+\) \(target < 2 s and < 200 MB\): (met|missed)$")
    assert lines and verdict.match(lines[-1]), done.stdout + done.stderr
