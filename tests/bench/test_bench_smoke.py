"""Smoke tests of every benchmark in bench/: a tiny run must work and end with its verdict line.

Timings are not checked (benchmarks do not gate CI); the exit code may be 0 (met) or 1 (missed).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.harness import REPO

TINY_RUNS = {
    "bus_roundtrip": ["--n", "20", "--warmup", "5"],
    "decision_latency": ["--n", "5", "--warmup", "1"],
    "notifier_window": ["--n", "20", "--warmup", "2"],
    "traffic_shift": ["--n", "5", "--warmup", "1"],
    "prober_vs_pgbench": ["--rate", "50", "--block", "1", "--blocks", "1", "--max-blocks", "1", "--users", "200",
                          "--warmup", "0.1"],
    "migrator_vs_psql": ["--rows", "5000", "--rounds", "1"],  # plus the test server's URL: no server of its own
}


@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_benchmark_runs_at_a_tiny_size_and_prints_its_verdict(name, request) -> None:
    args = list(TINY_RUNS[name])
    if name == "migrator_vs_psql":
        args += ["--database-url", request.getfixturevalue("postgres_admin_url")]
    done = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    verdict = re.compile(rf"^{name}: ratio [0-9.]+ \(target [0-9.]+\): (met|missed)$")
    assert lines and verdict.match(lines[-1]), done.stdout + done.stderr


@pytest.mark.parametrize("streams", ["simulated", "recorded"])
def test_detection_runs_at_a_tiny_size_and_prints_its_verdict(streams: str) -> None:
    """bench/detection.py's last line is the issue's own: the targets it is judged on, then met or missed; on
    simulated request streams and on those recorded on the embedded stack (bench/recorded/)."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "detection.py"), "--rounds", "1", "--holds", "2",
                           *(["--recorded"] if streams == "recorded" else [])],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert f"{streams} request streams" in lines[0], lines[0]
    # a heading, the table's header, 6 cases; the late-onset heading, header and 2 cases; 2 A/A lines and the verdict
    assert len(lines) == 15, done.stdout
    assert re.match(r"^detection: 5% errors median [0-9.]+ s, \+300 ms median [0-9.]+ s \(target < 10 s\), from a late "
                    r"onset [0-9.]+ s and [0-9.]+ s, [0-9.]+x and [0-9.]+x the sequential judge's from the start "
                    r"\(target <= 1.5x\), false alarms [0-9.]+% \(target <= 1%\), missed where fixed windows catch: .+ "
                    r"\(target none\): (met|missed)$", lines[-1]), lines[-1]
