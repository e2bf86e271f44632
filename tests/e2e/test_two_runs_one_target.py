"""Two go-lives on one traffic target: the target is held by one run at a time (issue 14, finding 5).

Five service processes, the real broker and database, the dry-run provider of golive/plans/skeleton.yaml, and
`golive run` as a user runs it. The second run starts while the first one is in its canary.
"""

from __future__ import annotations

import pytest

from golive.shared.events import (
    CommandFailed,
    CompensationStarted,
    MigrationsApplied,
    PhaseStarted,
    RunFinished,
    TrafficDrift,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
)
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import dry_run_weights, run_events
from tests.harness import background_run, finish_after, run_cli, wait_for_output

pytestmark = pytest.mark.e2e

PAIR = ("--deploy-id", "dpl_new", "--previous-deploy-id", "dpl_old")


def test_second_run_on_a_held_target_is_refused_at_start_and_the_first_ends_live(services, settings, process_env,
                                                                                  tmp_path):
    def gate_stage_2(plan: dict) -> None:
        plan["canary"]["stages"][1]["approval"] = True

    # the first run holds the target while it waits at stage 2's gate, however long the second takes to start
    plan = skeleton_plan(tmp_path)
    with background_run(skeleton_plan(tmp_path / "first", edit=gate_stage_2), "run-first", process_env, *PAIR) as first:
        wait_for_output(first, "stage2:gate")  # the first run moved traffic to 10% and waits for a person
        second = run_cli("run", str(plan), *PAIR, "--run-id", "run-second", env=process_env)
        first_out, first_err = finish_after(first, "approve", "run-first", "--stage", "2", env=process_env,
                                            timeout_s=120)

    # the second run is refused at start, naming the holder, and touches nothing
    assert second.returncode == 1, second.stdout + second.stderr
    assert "run-first" in second.stdout, second.stdout
    second_events = run_events(settings, "run-second")
    (refused,) = [e.data for e in second_events if isinstance(e.data, CommandFailed)]
    assert "held by run run-first" in refused.reason and "golive.cmd.traffic.take" in refused.command_type
    assert not [e for e in second_events if isinstance(e.data, (
        PhaseStarted, MigrationsApplied, TrafficShifted, TrafficDrift, TrafficRolledBack, TrafficPromoted,
        CompensationStarted))]
    (finished,) = [e.data for e in second_events if isinstance(e.data, RunFinished)]
    assert finished.left_to_undo == [] and "run-first" in finished.reason
    status = run_cli("status", "run-second", env=process_env)
    assert "held by run run-first" in status.stdout, status.stdout

    # the first run ends LIVE, with the weights read back from the provider
    assert first.returncode == 0, first_out + first_err
    assert dry_run_weights(settings)["dpl_new"]["weight"] == 100
    first_events = run_events(settings, "run-first")
    (taken,) = [e.data for e in first_events if isinstance(e.data, TrafficTargetTaken)]
    assert (taken.canary, taken.weight) == ("dpl_new", 0)
    assert [e.data.verified_weight for e in first_events if isinstance(e.data, TrafficShifted)] == [10, 50, 100]
    status = run_cli("status", "run-first", env=process_env)
    assert f"traffic target: {taken.target} (released; canary at 0% when the run took it)" in status.stdout, status.stdout

    # the target is free once its run ended; the next go-live on it expects what it reads back (100%), not 0%
    third = run_cli("run", str(plan), *PAIR, "--run-id", "run-third", env=process_env)
    assert third.returncode == 0, third.stdout + third.stderr
    third_events = run_events(settings, "run-third")
    (taken,) = [e.data for e in third_events if isinstance(e.data, TrafficTargetTaken)]
    assert taken.weight == 100
    assert not [e for e in third_events if isinstance(e.data, TrafficDrift)]
    assert dry_run_weights(settings)["dpl_new"]["weight"] == 100
