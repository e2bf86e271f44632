"""Smoke test for bench/notifier_window.py: a tiny run must work and print its verdict line.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(r"^notifier_window: ratio [0-9.]+ \(target [0-9.]+\): (met|missed)$")


def test_notifier_window_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "notifier_window.py"), "--n", "20", "--warmup", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert lines and VERDICT.match(lines[-1]), done.stdout + done.stderr
    assert "window: post answered->ledger" in done.stdout
