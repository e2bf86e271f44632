"""The saga and the run's traffic target (issue 14, finding 5): taken before anything runs, a refusal ends the run
at once with the holder's run id and nothing to undo, the first shift expects the weight read back when the target
was taken, and the compensation of a shift refused for drift is not sent."""

from __future__ import annotations

from golive.services.coordinator.saga import SendCommand, awaited_command, decide
from golive.shared.commands import (
    ApplyMigrations,
    RevertMigrations,
    RollbackTraffic,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.events import (
    CommandFailed,
    CompensationStarted,
    PhaseStarted,
    StepFailed,
    TrafficDrift,
    TrafficTargetTaken,
)
from tests.unit.saga_run import Run, commands, events, finished, work_commands

HELD = ("traffic target dry-run weights.json canary deploy-new is held by run run-0 (since 2025-01-05 01:58:00 UTC): "
        "one run per target at a time; start again once it ended; nothing was changed")


def taken(weight: int) -> TrafficTargetTaken:
    return TrafficTargetTaken(provider="dry-run", canary="deploy-new", target="dry-run weights.json", weight=weight)


def test_a_run_takes_its_traffic_target_before_anything_else():
    run = Run()

    outputs = run.start(take=False)

    assert [type(o.data) for o in outputs] == [TakeTrafficTarget]
    (take,) = commands(outputs)
    assert (take.canary, take.stable, take.provider.type) == ("deploy-new", "deploy-old", "dry-run")
    assert run.state.in_flight == outputs[0].id == "run-1.take" and run.state.position == -1

    outputs = run.answer(taken(0))

    assert [type(c) for c in work_commands(outputs)] == [ApplyMigrations]
    assert [e.step for e in events(outputs) if isinstance(e, PhaseStarted)] == ["migrate"]


def test_a_refused_take_ends_the_run_at_once_naming_the_holder_with_nothing_to_undo():
    run = Run()
    run.start(take=False)

    outputs = run.answer(CommandFailed(service="traffic", command_type=TakeTrafficTarget.TYPE, reason=HELD,
                                       failure="invalid"))

    assert work_commands(outputs) == []  # no migration, no shift, no compensation
    assert not [e for e in events(outputs) if isinstance(e, CompensationStarted | PhaseStarted)]
    (failed,) = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed.step == "traffic:take" and failed.cause == "refused"
    result = finished(outputs)
    assert result.outcome == "rolled_back" and result.left_to_undo == []
    assert "held by run run-0" in result.reason
    assert run.state.finished


def test_the_first_shift_expects_the_weight_read_back_when_the_target_was_taken():
    run = Run()
    run.start(take=False)
    run.answer(taken(100))  # an earlier go-live of this deployment promoted it

    run.advance_to("stage1:shift:10")
    resent = awaited_command(run.state)  # what a restarted coordinator sends again
    while not run.state.finished:
        run.succeed()

    shifts = [c for c in commands(run.outputs) if isinstance(c, ShiftTraffic)]
    assert [(c.weight, c.expected_previous_weight) for c in shifts] == [(10, 100), (100, 10)]
    assert isinstance(resent, SendCommand) and resent.data.expected_previous_weight == 100
    assert finished(run.outputs).outcome == "succeeded"


def test_a_replayed_run_keeps_the_weight_read_back_when_the_target_was_taken():
    run = Run()
    run.start(take=False)
    run.answer(taken(40))
    run.advance_to("stage1:shift:10")

    state = None
    for item in run.inputs:  # a restarted coordinator folds the run's events
        state, _ = decide(state, item)

    assert state == run.state and awaited_command(state).data.expected_previous_weight == 40


def test_the_compensation_of_a_shift_refused_for_drift_is_not_sent():
    run = Run()
    run.start()
    run.advance_to("stage1:shift:10")

    outputs = run.answer(TrafficDrift(provider="dry-run", canary="deploy-new", requested_weight=10, expected_weight=0,
                                      observed_weight=30))
    while not run.state.finished:
        run.succeed()

    (failed,) = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert "golive expected 0%" in failed.reason and failed.cause == "drift"
    undone = [c for c in commands(run.outputs) if isinstance(c, RollbackTraffic | RevertMigrations)]
    assert [type(c) for c in undone] == [RevertMigrations]  # the migration is undone; traffic, never moved, is not
    assert [e.undoes for e in events(run.outputs) if isinstance(e, CompensationStarted)] == ["migrate"]
    assert finished(run.outputs).outcome == "rolled_back"
