"""`golive demo` as a user runs it: the whole embedded stack, the runbook plan, the Slack messages printed, the
artifacts folder at the end, the run's exit code. The normal demo and a bad canary run side by side (each has
its own stack on free ports); --time-scale 600 keeps them short (the default, 120, is what `make demo` runs). They
run in a directory outside the repository: the runbook plan is golive's own package data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timing]  # measured latencies decide it

TIMEOUT_S = 240


@pytest.fixture
def home():
    """The demos' working directory, outside the repository. Not under pytest's basetemp: another pytest session on
    the machine may reset its mode or remove it while the demo's PostgreSQL (another user, as root) works in it."""
    root = Path(tempfile.mkdtemp(prefix="golive-demo-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start_demo(home: Path, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    out = home / f"{name}.out"
    env = dict(os.environ, GOLIVE_ARTIFACTS_DIR=str(home / name / "artifacts"), COLUMNS="250")
    env.pop("GOLIVE_NATS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "golive", "demo", "--time-scale", "600", "--state-dir", str(home / name / "state"), *args],
        env=env, stdout=out.open("w"), stderr=subprocess.STDOUT, cwd=home, start_new_session=True,
    )
    return proc, out


def finish(proc: subprocess.Popen, out: Path) -> tuple[int, str]:
    try:
        code = proc.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, out.read_text()


def slack_lines(output: str) -> list[str]:
    return [line.split("slack <- ", 1)[1] for line in output.splitlines() if "slack <- " in line]


def artifacts_of(output: str) -> Path:
    match = re.search(r"^artifacts: (\S+);", output, re.MULTILINE)
    assert match, output[-3000:]
    return Path(match.group(1))


def test_the_demo_runs_the_runbook_to_live_and_a_bad_canary_rolls_back_by_itself(home):
    good = start_demo(home, "good")
    bad = start_demo(home, "bad", "--bad-canary", "errors", "--from-stage", "2")
    good_code, good_out = finish(*good)
    bad_code, bad_out = finish(*bad)

    assert good_code == 0, good_out[-4000:]
    slack = slack_lines(good_out)
    assert slack[0].startswith("🚀 Starting Supabase Production Deployment | Environment: Production"), slack
    assert "Maintenance Window: 02:00-04:00 UTC" in slack[0]
    assert sum("stage" in m and "passed" in m for m in slack) == 3, slack
    assert slack[-1].startswith("✅ Supabase Production Deployment SUCCESS: canary live after "), slack
    assert "| Status: LIVE |" in slack[-1] and "Confirm backup completion: approved by " in slack[-1], slack
    for step in ("preflight:gate", "migrate", "smoke:signup_exists", "stage3:hold", "final_validation", "lock_in:promote"):
        assert step in good_out, step
    validation = json.loads((artifacts_of(good_out) / "prod_performance_validation.json").read_text())
    assert validation["validation_metadata"]["overall_passed"] is True

    assert bad_code == 1, bad_out[-4000:]
    assert "the canary app now misbehaves (errors" in bad_out
    slack = slack_lines(bad_out)
    assert sum("passed" in m for m in slack) == 1, slack  # stage 1 passed; stage 2 broke
    rollback = next(m for m in slack if m.startswith("🚨 Supabase Production Rollback Triggered: stage 2 (50%) failed: "))
    assert "Action: Rollback to previous deployment stable" in rollback and "stage2:hold" in rollback, rollback
    assert "&gt;" not in "\n".join(slack) and "&lt;" not in "\n".join(slack), slack  # printed as Slack shows it
    assert slack[-1].startswith("↩️ Supabase Production rolled back to stable: stage 2 (50%) failed: "), slack
    assert "| Undone: traffic back on stable, canary read back at 0%, " in slack[-1], slack
    assert "| Breach to rollback: " in slack[-1] and "(rollback.drop_indexes: false)" in slack[-1], slack
    report = json.loads((artifacts_of(bad_out) / "report.json").read_text())
    assert report["outcome"] == "rolled_back" and report["reason"].startswith("stage 2 (50%) failed: "), report
    assert "error rate" in report["reason"] and "stage2:" not in report["reason"], report["reason"]
    validation = json.loads((artifacts_of(bad_out) / "prod_performance_validation.json").read_text())
    failed = validation["validation_metadata"]["failed"]
    assert failed and all(name.startswith("stage 2 (50%)") for name in failed), failed  # nothing failed before 50%
    assert validation["checks"][0]["name"] == failed[0] and not validation["checks"][0]["passed"]
    outcome_badge = (artifacts_of(bad_out) / "badge-outcome.svg").read_text()
    assert "rolled back" in outcome_badge
    assert report["final_traffic"]["canary_weight"] == 0 and report["final_traffic"]["rolled_back_to"] == "stable"
