"""The on-call engineer's controls on a live run: abort it, ask where it stands; bad requests change nothing."""

from __future__ import annotations

import json
import time

import pytest

from tests.builders import skeleton_plan
from tests.e2e.run_outcome import panel_at_end
from tests.harness import run_cli, start_run, wait_for_output

pytestmark = pytest.mark.e2e


def test_abort_mid_hold_rolls_back_at_once_and_status_says_who_and_why(services, settings, process_env, tmp_path):
    # a hold of an hour: the run can only end within the test's bounds because the abort ended it
    run = start_run(skeleton_plan(tmp_path, hold="1h"), "run-abort", process_env)
    try:
        wait_for_output(run, "stage1:hold")
        aborted = run_cli("abort", "run-abort", "--reason", "error budget burning on the dashboards", env=process_env)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()

    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert run.returncode == 1, out + err
    assert "abort requested by" in aborted.stdout and "error budget burning" in aborted.stdout
    weights = json.loads((settings.state_dir / "traffic-dry-run.json").read_text())
    assert weights["canary"]["weight"] == 0

    status = run_cli("status", "run-abort", env=process_env)
    assert status.returncode == 0, status.stderr
    assert "state: RolledBack" in status.stdout and "why: stage 1 (10%): aborted by" in status.stdout
    assert "aborted by" in status.stdout and "error budget burning" in status.stdout
    listing = run_cli("status", env=process_env)
    assert "run-abort" in listing.stdout and "rolled_back" in listing.stdout
    panel = panel_at_end(settings, "run-abort")  # what `golive run` showed last on a terminal (finding 4)
    assert "RolledBack · step 4 of 8 · rolled back after" in panel, panel
    assert "undone: traffic back on stable" in panel
    assert "measuring" not in panel and "undoing" not in panel and "phase rollback" not in panel

    again = run_cli("abort", "run-abort", "--reason", "twice", env=process_env)
    assert again.returncode == 2 and "already ended: rolled_back" in again.stderr


def test_abort_or_status_of_an_unknown_run_exits_2_and_sends_nothing(services, settings, process_env):
    aborted = run_cli("abort", "run-nope", "--reason", "typo", env=process_env)
    status = run_cli("status", "run-nope", env=process_env)
    assert aborted.returncode == 2 and "no run run-nope" in aborted.stderr
    assert status.returncode == 2 and "no run run-nope" in status.stderr
    events = run_cli("events", "--run", "run-nope", env=process_env)
    assert events.returncode == 1  # nothing was recorded for it


def test_gated_stage_waits_for_golive_approve_of_that_stage(services, settings, process_env, tmp_path):
    def gate_stage_2(plan: dict) -> None:
        plan["canary"]["stages"][1]["approval"] = True

    run = start_run(skeleton_plan(tmp_path, edit=gate_stage_2), "run-gate", process_env)
    try:
        seen = wait_for_output(run, "stage2:gate")
        time.sleep(1.0)
        assert run.poll() is None  # it waits, it does not move on by itself
        waiting = run_cli("status", "run-gate", env=process_env).stdout
        assert "state: Paused · step 5 of 9 · stage 2 (50%) gate" in waiting, waiting  # not `running` (finding 4)
        assert "WAITING at stage 2 (50%): `golive approve run-gate --stage 2 --comment ...`" in waiting
        wrong = run_cli("approve", "run-gate", "--stage", "3", env=process_env)
        right = run_cli("approve", "run-gate", "--stage", "2", "--comment", "dashboards green", env=process_env)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert wrong.returncode == 2 and "waits at stage2:gate, not at stage 3" in wrong.stderr
    assert right.returncode == 0, right.stderr
    assert run.returncode == 0, seen + out + err
    assert "stage 2 approved by" in out and "dashboards green" in out
    again = run_cli("approve", "run-gate", env=process_env)
    assert again.returncode == 2 and "not waiting for an approval" in again.stderr
