"""The traffic ledger is shared by every traffic instance (services/traffic/ledger.py, a JetStream KV bucket), so a
shift redelivered to another instance, or to one restarted with an empty state dir, knows what the first one did:
a shift of a run another instance rolled back is refused, and a redelivered shift reports the weight its first
attempt found. Each instance has its own GOLIVE_STATE_DIR, as on different hosts; the dry-run provider's file is
the production routing they all share."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from golive.services.traffic.ledger import Fenced, Ledger
from golive.shared.commands import (
    ProviderSpec,
    RollbackTraffic,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.envelope import new_envelope
from golive.shared.events import (
    CommandFailed,
    TrafficRolledBack,
    TrafficShifted,
    TrafficTargetTaken,
)
from golive.shared.settings import Settings
from tests.traffic.conftest import Conversation, started_traffic

SHIFT_TYPE = "golive.cmd.traffic.shift.v1"


def on_host(settings: Settings, host: str) -> Settings:
    """The same bus and subject root, the state dir of another host."""
    return settings.model_copy(update={"state_dir": settings.state_dir.parent / f"state-{host}"})


def dry_run(tmp_path: Path) -> ProviderSpec:
    return ProviderSpec(type="dry-run", state_file=str(tmp_path / "weights.json"))


def canary_weight(tmp_path: Path) -> int:
    return json.loads((tmp_path / "weights.json").read_text())["dpl_new"]["weight"]


async def redeliver(talk: Conversation, data: ShiftTraffic, command_id: str) -> None:
    """The same command (same envelope id) again, as JetStream redelivers it; a publish id of its own, since the
    stream would otherwise drop it as a duplicate."""
    envelope = new_envelope(data, id=command_id, source="/tests", runid=talk.run_id)
    await talk.js.publish(talk.settings.subjects.command("traffic", "shift"), envelope.to_json(),
                          stream=talk.settings.subjects.command_stream, headers={"Nats-Msg-Id": f"{command_id}#again"})


async def handled(bus, command_type: str, count: int = 1) -> None:
    """Wait until ``bus`` has finished ``count`` commands of ``command_type`` (whatever their outcome)."""
    for _ in range(600):
        done = sum(bus.metrics.registry.get_sample_value(
            "golive_commands_total", {"service": "traffic", "type": command_type, "outcome": outcome}) or 0
            for outcome in ("done", "failed"))
        if done >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the instance never finished {count} {command_type} command(s)")


@pytest.mark.parametrize("redelivered_to", ["the first instance restarted", "a new instance with an empty state dir"])
async def test_a_shift_redelivered_after_another_instance_rolled_its_run_back_is_refused(
        settings, tmp_path, redelivered_to):
    spec = dry_run(tmp_path)
    shift_10 = ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=10, expected_previous_weight=0)
    a, _ = await started_traffic(on_host(settings, "a"))  # creates the streams
    try:
        async with Conversation(settings, "run-f") as talk:
            taken = await talk.ask(TakeTrafficTarget(provider=spec, canary="dpl_new", stable="dpl_old"), "run-f.take")
            assert isinstance(taken.data, TrafficTargetTaken)
            shifted = await talk.ask(shift_10, "run-f.1")
            await a.stop()
            b, _ = await started_traffic(on_host(settings, "b"))
            try:
                rolled_back = await talk.ask(RollbackTraffic(provider=spec, canary="dpl_new", to="dpl_old"), "run-f.undo")
            finally:
                await b.stop()
            host = "a" if redelivered_to.startswith("the first") else "c"
            a, _ = await started_traffic(on_host(settings, host))
            await redeliver(talk, shift_10, "run-f.1")
            await handled(a, SHIFT_TYPE)
            # the rollback stands (read before the answer: a shift done again answers nothing new, its answer's id
            # is the first attempt's and the stream drops it as a duplicate)
            assert canary_weight(tmp_path) == 0, "the redelivered shift undid the rollback"
            refused = await talk.next()
    finally:
        await a.stop()
    assert isinstance(shifted.data, TrafficShifted) and shifted.data.after == 10
    assert isinstance(rolled_back.data, TrafficRolledBack) and rolled_back.data.verified_weight == 0
    assert isinstance(refused.data, CommandFailed) and "already rolled dpl_new back" in refused.data.reason


async def ledgers(settings: Settings, n: int) -> tuple[list, list[Ledger]]:
    """``n`` instances' ledgers on one bucket, each with its own connection."""
    import nats

    conns = [await nats.connect(settings.resolved_nats_url()) for _ in range(n)]
    return conns, [await Ledger.open(nc.jetstream(), settings.subject_root) for nc in conns]


async def test_a_redelivered_shift_finds_the_weight_the_first_attempt_found_on_any_instance(settings):
    conns, (a, b) = await ledgers(settings, 2)
    try:
        first = await a.remember_before("run-x.1", 0)
        again = await b.remember_before("run-x.1", 10)  # the redelivery reads back what the first attempt set
        unknown = await b.before("run-x.2")
        raced = await asyncio.gather(a.remember_before("run-x.3", 20), b.remember_before("run-x.3", 30))
    finally:
        for nc in conns:
            await nc.close()
    assert (first, again, unknown) == (0, 0, None)
    assert raced[0] == raced[1] and raced[0] in (20, 30)  # one of the two attempts recorded first, both see it


async def test_a_fence_written_after_a_shift_read_its_run_refuses_the_shift_before_its_provider_call(settings):
    conns, (shifting, rolling_back) = await ledgers(settings, 2)
    try:
        guard = await shifting.guard("run-g", "dpl_new")
        guard = await shifting.confirm(guard)  # checked after reading its before-weight: not fenced yet
        await rolling_back.fence("run-g", "dpl_new")  # the rollback, on another instance, before its provider call
        with pytest.raises(Fenced):
            await shifting.confirm(guard)  # right before the provider call: the fence wins
        with pytest.raises(Fenced):
            await shifting.guard("run-g", "dpl_new")
        other_run = await shifting.confirm(await shifting.guard("run-h", "dpl_new"))
    finally:
        for nc in conns:
            await nc.close()
    assert other_run.revision > 0  # a fence is the run's own: another run's shifts go on


async def test_once_a_fence_is_written_no_confirmation_of_that_run_succeeds_however_they_interleave(settings):
    conns, (one, two, fencer) = await ledgers(settings, 3)
    confirmed: list[int] = []  # the KV revisions of the shifts' confirmations (one sequence for the whole bucket)

    async def shifts(ledger: Ledger) -> bool:
        for _ in range(2_000):
            try:
                confirmed.append((await ledger.confirm(await ledger.guard("run-r", "dpl_new"))).revision)
            except Fenced:
                return True
        return False

    async def rollback() -> int:
        while len(confirmed) < 20:  # the shifts are under way
            await asyncio.sleep(0.001)
        return await fencer.fence("run-r", "dpl_new")

    try:
        one_refused, two_refused, fence_revision = await asyncio.gather(shifts(one), shifts(two), rollback())
    finally:
        for nc in conns:
            await nc.close()
    assert one_refused and two_refused
    assert [r for r in confirmed if r > fence_revision] == []  # nothing confirmed after the fence was written


async def test_the_weight_set_last_is_shared_and_the_bucket_bounds_what_it_keeps(settings):
    conns, (a, b) = await ledgers(settings, 2)
    try:
        await a.record_set("envoy|dpl_new", 50)
        seen = await b.last_set("envoy|dpl_new")
        status = await a.kv.status()
    finally:
        for nc in conns:
            await nc.close()
    assert seen == 50
    assert status.bucket == f"{settings.subject_root.upper()}_TRAFFIC_LEDGER"
    assert status.history == 1 and 0 < status.ttl <= 7 * 24 * 3600
