"""One run per traffic target (services/traffic/target_lock.py), through the traffic service on the real bus with
the dry-run provider: a second run is refused with the holder's run id and changes nothing, the compensation of a
shift that was refused or never applied changes nothing, the weight a run expects is the one read back when it
took the target, and a hold ends with its run unless that run needs a human."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from golive.shared.commands import (
    ProviderSpec,
    RollbackTraffic,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.envelope import new_envelope
from golive.shared.events import (
    CommandFailed,
    RunFinished,
    TrafficDrift,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
)
from tests.traffic.conftest import Conversation, started_traffic


def dry_run(tmp_path: Path) -> ProviderSpec:
    return ProviderSpec(type="dry-run", state_file=str(tmp_path / "weights.json"))


def take(spec: ProviderSpec) -> TakeTrafficTarget:
    return TakeTrafficTarget(provider=spec, canary="dpl_new", stable="dpl_old")


def shift(spec: ProviderSpec, weight: int, expected: int | None) -> ShiftTraffic:
    return ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=weight, expected_previous_weight=expected)


def rollback(spec: ProviderSpec) -> RollbackTraffic:
    return RollbackTraffic(provider=spec, canary="dpl_new", to="dpl_old")


def canary_weight(tmp_path: Path) -> int:
    return json.loads((tmp_path / "weights.json").read_text())["dpl_new"]["weight"]


def set_by_hand(tmp_path: Path, weight: int, **more) -> None:
    """What a human (or an earlier go-live) leaves in the dry-run provider's file."""
    (tmp_path / "weights.json").write_text(json.dumps({"dpl_new": {"weight": weight, "stable": "dpl_old", **more}}))


async def finish(talk: Conversation, outcome: str) -> None:
    """Record the run's run_finished as the coordinator does."""
    subjects = talk.settings.subjects
    ended = new_envelope(RunFinished(outcome=outcome, reason="test", duration_s=1.0), id=f"{talk.run_id}/finished",
                         source="/golive/coordinator", runid=talk.run_id,
                         subject=subjects.event(talk.run_id, "coordinator", "run_finished"))
    await talk.js.publish(ended.subject, ended.to_json(), stream=subjects.event_stream, headers={"Nats-Msg-Id": ended.id})


async def test_a_second_run_is_refused_naming_the_holder_and_changes_no_weight(settings, tmp_path):
    bus, _ = await started_traffic(settings)
    spec = dry_run(tmp_path)
    try:
        async with Conversation(settings, "run-a") as a, Conversation(settings, "run-b") as b:
            await a.send(take(spec), "run-a.take")
            taken = await a.next()
            await a.send(shift(spec, 10, 0), "run-a.1")
            assert isinstance((await a.next()).data, TrafficShifted)
            await b.send(take(spec), "run-b.take")
            refused = await b.next()
            await b.send(shift(spec, 50, 10), "run-b.1")  # a shift without a take is refused the same way
            shift_refused = await b.next()
            await b.send(rollback(spec), "run-b.undo")
            b_undone = await b.next()
            weight_after_b = canary_weight(tmp_path)
            await a.send(rollback(spec), "run-a.undo")  # the holder's rollback does restore traffic
            a_undone = await a.next()
    finally:
        await bus.stop()
    assert isinstance(taken.data, TrafficTargetTaken) and taken.data.weight == 0
    assert "dry-run" in taken.data.target and "dpl_new" in taken.data.target
    for answer in (refused, shift_refused):
        assert isinstance(answer.data, CommandFailed) and answer.data.failure == "invalid"
        assert "is held by run run-a" in answer.data.reason and "nothing was changed" in answer.data.reason
    assert isinstance(b_undone.data, TrafficRolledBack) and not b_undone.data.changed
    assert b_undone.data.verified_weight == 10 and weight_after_b == 10  # run-a's 10% stands
    assert isinstance(a_undone.data, TrafficRolledBack) and a_undone.data.changed and a_undone.data.verified_weight == 0
    assert canary_weight(tmp_path) == 0


async def test_the_compensation_of_a_shift_refused_for_drift_changes_nothing(settings, tmp_path):
    bus, _ = await started_traffic(settings)
    spec = dry_run(tmp_path)
    try:
        async with Conversation(settings, "run-drift") as talk:
            await talk.send(take(spec), "run-drift.take")
            assert (await talk.next()).data.weight == 0
            set_by_hand(tmp_path, 30)  # someone at a console, after the run took the target
            drift = await talk.ask(shift(spec, 10, 0), "run-drift.1")
            undone = await talk.ask(rollback(spec), "run-drift.undo")
    finally:
        await bus.stop()
    assert isinstance(drift.data, TrafficDrift) and drift.data.observed_weight == 30
    assert isinstance(undone.data, TrafficRolledBack) and not undone.data.changed
    assert undone.data.verified_weight == 30 and canary_weight(tmp_path) == 30  # the human's change stands


async def test_a_run_expects_the_weight_read_back_when_it_took_the_target_and_undoes_nothing_it_never_applied(
        settings, tmp_path):
    bus, _ = await started_traffic(settings)
    spec = dry_run(tmp_path)
    set_by_hand(tmp_path, 100, promoted=True)  # an earlier go-live of this deployment promoted it
    try:
        async with Conversation(settings, "run-again") as talk:
            taken = await talk.ask(take(spec), "run-again.take")
            again = await talk.ask(take(spec), "run-again.take-redelivered")  # a new id: not deduplicated by NATS
            undone = await talk.ask(rollback(spec), "run-again.undo")  # the run failed before its first shift
    finally:
        await bus.stop()
    assert (taken.data.weight, again.data.weight) == (100, 100)
    assert isinstance(undone.data, TrafficRolledBack) and not undone.data.changed
    assert canary_weight(tmp_path) == 100  # production stays where the earlier go-live left it


async def test_a_hold_ends_with_its_run_but_a_run_that_needs_a_human_keeps_it(settings, tmp_path):
    bus, _ = await started_traffic(settings)
    spec = dry_run(tmp_path)
    try:
        async with (Conversation(settings, "run-1") as one, Conversation(settings, "run-2") as two,
                    Conversation(settings, "run-3") as three):
            await one.send(take(spec), "run-1.take")
            assert isinstance((await one.next()).data, TrafficTargetTaken)
            await finish(one, "rolled_back")
            await two.send(take(spec), "run-2.take")
            second = await two.next()
            await two.send(shift(spec, 10, 0), "run-2.1")
            assert isinstance((await two.next()).data, TrafficShifted)
            await finish(two, "needs_human")
            await three.send(take(spec), "run-3.take")
            third = await three.next()
    finally:
        await bus.stop()
    assert isinstance(second.data, TrafficTargetTaken) and second.data.weight == 0
    assert isinstance(third.data, CommandFailed)
    assert "held by run run-2" in third.data.reason and "needs_human" in third.data.reason
    assert "golive retry run-2" in third.data.reason
    assert canary_weight(tmp_path) == 10


async def test_two_runs_taking_a_free_target_at_once_one_wins(settings, tmp_path):
    bus, _ = await started_traffic(settings)
    spec = dry_run(tmp_path)
    try:
        async with Conversation(settings, "run-x") as x, Conversation(settings, "run-y") as y:
            await asyncio.gather(x.send(take(spec), "run-x.take"), y.send(take(spec), "run-y.take"))
            answers = await asyncio.gather(x.next(), y.next())
    finally:
        await bus.stop()
    won = [a for a in answers if isinstance(a.data, TrafficTargetTaken)]
    lost = [a for a in answers if isinstance(a.data, CommandFailed)]
    assert len(won) == 1 and len(lost) == 1, [a.data for a in answers]
    assert f"held by run {won[0].runid}" in lost[0].data.reason
