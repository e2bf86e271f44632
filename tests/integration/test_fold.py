"""shared/fold.py on a real nats-server: a driver folds each run's events in stream order, whatever order the shared
consumer hands them over in; an event already folded is never folded twice; runs that ended are remembered, boundedly."""

from __future__ import annotations

import nats
import pytest

from golive.shared.bus import ensure_streams
from golive.shared.envelope import Envelope, new_envelope
from golive.shared.events import PhaseStarted
from golive.shared.fold import RunFolds

RUN = "run-fold"


@pytest.fixture
async def logged(settings):
    """A JetStream context and RUN's events 1..5 (phase_started step-1 .. step-5), by stream sequence."""
    await ensure_streams(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    js = nc.jetstream()
    events: dict[int, Envelope] = {}
    for i in range(1, 6):
        envelope = new_envelope(PhaseStarted(phase="migrate", step=f"step-{i}"), id=f"{RUN}/{i}",
                                source="/golive/coordinator", runid=RUN,
                                subject=settings.subjects.event(RUN, "coordinator", "phase_started"))
        ack = await js.publish(envelope.subject, envelope.to_json(), headers={"Nats-Msg-Id": envelope.id})
        events[ack.seq] = envelope
    yield js, events
    await nc.close()


def steps(folds: RunFolds[list[str]]) -> list[str]:
    return folds.states[RUN]


async def test_an_event_after_a_gap_is_folded_after_the_events_of_the_gap_read_from_the_log(settings, logged):
    js, events = logged
    folds: RunFolds[list[str]] = RunFolds(lambda: js, settings.subjects, ended_kept=10)
    first, *_, last = sorted(events)
    folds.keep(RUN, [events[first].data.step], first)  # folded up to the first; the rest went to another instance
    earlier: list[str] = []

    async def apply(envelope: Envelope) -> None:
        folds.states[RUN] = [*folds.states[RUN], envelope.data.step]

    async def before(envelope: Envelope) -> None:
        earlier.append(envelope.data.step)
        await apply(envelope)

    await folds.follow(events[last], last, apply, earlier=before)

    assert steps(folds) == ["step-1", "step-2", "step-3", "step-4", "step-5"]
    assert earlier == ["step-2", "step-3", "step-4"]
    assert folds.applied[RUN] == last
    await folds.follow(events[first + 2], first + 2, apply)  # handed back late: folded already
    assert steps(folds) == ["step-1", "step-2", "step-3", "step-4", "step-5"]


async def test_a_run_that_ends_while_catching_up_is_folded_no_further(settings, logged):
    js, events = logged
    folds: RunFolds[list[str]] = RunFolds(lambda: js, settings.subjects, ended_kept=10)
    first, *_, last = sorted(events)
    folds.keep(RUN, [], first - 1)

    async def apply(envelope: Envelope) -> None:
        folds.states[RUN] = [*folds.states[RUN], envelope.data.step]
        if envelope.data.step == "step-3":
            folds.end(RUN, first + 2)  # step-3 ends it (as a run_finished would)

    await folds.follow(events[last], last, apply)

    assert RUN not in folds and RUN not in folds.applied
    assert folds.ended[RUN] == first + 2


async def test_history_reads_the_events_before_a_sequence(settings, logged):
    js, events = logged
    folds: RunFolds[list[str]] = RunFolds(lambda: js, settings.subjects, ended_kept=10)
    first = min(events)
    assert [e.data.step for _seq, e in await folds.history(RUN)] == [f"step-{i}" for i in range(1, 6)]
    assert [seq for seq, _e in await folds.history(RUN, before_seq=first + 2)] == [first, first + 1]


def test_ended_runs_are_remembered_up_to_a_bound_the_oldest_forgotten_first(settings):
    folds: RunFolds[int] = RunFolds(lambda: None, settings.subjects, ended_kept=2)  # type: ignore[arg-type,return-value]
    for n, run_id in enumerate(["a", "b", "c"]):
        folds.keep(run_id, n, n)
        folds.end(run_id, n)
    assert list(folds.ended) == ["b", "c"]
    assert not folds.states and not folds.applied
    folds.reopen("b")
    assert list(folds.ended) == ["c"]
