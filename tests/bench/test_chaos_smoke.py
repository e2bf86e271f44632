"""The chaos benchmark's small form, for CI: three targeted kill -9 trials on the embedded stack with every service
supervised. The coordinator killed after sending lock_in's promote and before handling its answer, the traffic
service killed with the rollback's shift waiting for it, the notifier killed with the start message in flight: each
run ends as its plan calls for, nothing runs twice, every message arrives exactly once, nothing is stuck."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.e2e

VERDICT = re.compile(r"^chaos: (\d+) trials, correct (\d+)/(\d+), duplicates (\d+), lost (\d+), stuck (\d+)$")


def test_chaos_smoke_every_run_ends_right_with_nothing_duplicated_lost_or_stuck() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "chaos.py"), "--smoke", "--targeted-only"],
                          cwd=REPO, capture_output=True, text=True, timeout=400, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    verdict = VERDICT.match(lines[-1])
    assert verdict, done.stdout + done.stderr
    assert verdict.groups() == ("3", "3", "3", "0", "0", "0"), done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    trials = [line for line in lines if line.startswith("trial ")]
    assert [t.split()[3] for t in trials] == ["coordinator", "traffic", "notifier"], done.stdout
