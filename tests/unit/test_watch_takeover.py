"""Taking a post-deploy watch over from a driver that died: which of its events were handled (folded silently),
which decisions nobody published yet (published now), and the check it had out (not sent a second time)."""

from __future__ import annotations

import re
from datetime import timedelta

from golive.services.coordinator.active_runs import split_keys, watch_key
from golive.services.coordinator.post_deploy import check_command_id, decide
from golive.services.coordinator.post_deploy_driver import restore_sent, sent_note, take_over
from golive.services.coordinator.saga import EmitEvent, SendCommand, Tick
from golive.shared.bus import correlation_of
from golive.shared.envelope import Envelope, new_envelope
from golive.shared.events import (
    ProbesCompleted,
    RunFinished,
    WatchCheckCompleted,
    WatchStarted,
    WatchSummary,
)
from golive.shared.ids import ID_PATTERN
from tests.unit.report_runs import T0, WATCHED_PLAN, RunBuilder

COORDINATOR = "/golive/coordinator"
START, HOUR = timedelta(minutes=30), timedelta(hours=1)


class Stream:
    """One run's events as the stream holds them: its inputs, and what a watch driver published for each one it
    handled (events caused by the input, or by nothing for the clock). The checks it sent go to ``sent``."""

    def __init__(self) -> None:
        self.run = RunBuilder("run-w", plan=WATCHED_PLAN)
        self.events: list[Envelope] = self.run.events
        self.sent: list[str] = []
        self.state, _ = decide(None, self.events[0])

    def input(self, at: timedelta, data, correlationid: str | None = None, handled: bool = True) -> Envelope:
        envelope = self.run.add(data, at.total_seconds(), correlationid=correlationid)
        if handled:
            self.state, outputs = decide(self.state, envelope)
            self._publish(outputs, envelope, at)
        return envelope

    def tick(self, at: timedelta) -> None:
        self.state, outputs = decide(self.state, Tick(T0 + at))
        self._publish(outputs, None, at)

    def succeed(self, handled: bool = True) -> Envelope:
        return self.input(START, RunFinished(outcome="succeeded", reason="ok", duration_s=1800), handled=handled)

    def answer(self, at: timedelta, index: int, handled: bool = True) -> Envelope:
        self.run.result(at.total_seconds(), 12.0, label=f"post-deploy check {index + 1}")
        result = self.run.events.pop().data
        return self.input(at, ProbesCompleted(results=[result], passed=True, summary=result.summary, duration_s=30),
                          correlationid=check_command_id("run-w", index), handled=handled)

    def _publish(self, outputs, cause: Envelope | None, at: timedelta) -> None:
        for out in outputs:
            if isinstance(out, SendCommand):
                self.sent.append(out.id)
            else:
                self.events.append(new_envelope(out.data, id=out.id, source=COORDINATOR, runid="run-w", time=T0 + at,
                                                correlationid=out.correlationid or correlation_of(cause),
                                                causationid=cause.id if cause else None))


def watching_for_an_hour(answer_handled: bool) -> Stream:
    stream = Stream()
    stream.succeed()
    stream.answer(START + timedelta(seconds=31), 0)
    stream.tick(START + HOUR)  # check 1 goes out
    stream.answer(START + HOUR + timedelta(seconds=31), 1, handled=answer_handled)
    return stream


def test_an_answer_its_dead_driver_never_recorded_is_recorded_by_the_one_taking_over():
    stream = watching_for_an_hour(answer_handled=False)
    state, pending = take_over(stream.events, COORDINATOR)
    [(cause, outputs)] = pending
    assert cause.correlationid == check_command_id("run-w", 1)
    [done] = [o.data for o in outputs if isinstance(o, EmitEvent) and isinstance(o.data, WatchCheckCompleted)]
    assert done.index == 1 and done.passed
    assert state.checks_done == 2 and state.watching


def test_nothing_its_driver_published_is_published_again():
    stream = watching_for_an_hour(answer_handled=True)
    state, pending = take_over(stream.events, COORDINATOR)
    assert pending == []
    assert state.checks_done == 2 and state.sent_at is None


def test_the_end_of_a_run_no_watch_driver_handled_starts_the_watch():
    stream = Stream()
    finished = stream.succeed(handled=False)
    state, [(cause, outputs)] = take_over(stream.events, COORDINATOR)
    assert cause is finished and state.watching
    assert isinstance(outputs[0].data, WatchStarted) and [o.id for o in outputs[1:]] == ["run-w/watch/check/0"]


def test_a_watch_that_ended_is_not_taken_over():
    stream = watching_for_an_hour(answer_handled=True)
    late = START + timedelta(days=7, hours=1)
    stream.tick(late)  # the last check goes out late (its coordinator was down), then the period is over
    stream.answer(late + timedelta(seconds=31), 2)
    stream.tick(late + timedelta(seconds=32))
    assert stream.state.ended
    state, pending = take_over(stream.events, COORDINATOR)
    assert state.ended and pending == []


def test_the_check_its_dead_driver_had_out_is_not_sent_again():
    stream = watching_for_an_hour(answer_handled=True)
    stream.tick(START + 2 * HOUR)  # check 2 goes out; its driver notes it, then dies
    note = sent_note(stream.state)
    state, _ = take_over(stream.events, COORDINATOR)
    soon = Tick(T0 + START + 2 * HOUR + timedelta(seconds=5))

    _, again = decide(state, soon)  # without the note, the check goes out again (JetStream drops it within 2 min)
    assert [o.id for o in again if isinstance(o, SendCommand)] == ["run-w/watch/check/2"]

    restored = restore_sent(state, note)
    assert decide(restored, soon)[1] == []  # awaited, not sent again
    assert restored.sent_at == T0 + START + 2 * HOUR and restored.next_check_at == stream.state.next_check_at
    # and if its answer never comes, it fails from when it went out (duration 30 s + step timeout 60 s)
    _, late = decide(restored, Tick(T0 + START + 2 * HOUR + timedelta(seconds=91)))
    [done] = [o.data for o in late if isinstance(o, EmitEvent) and isinstance(o.data, WatchCheckCompleted)]
    assert done.index == 2 and done.error.startswith("no answer from the prober")


def test_a_note_of_a_check_already_answered_or_unreadable_changes_nothing():
    stream = watching_for_an_hour(answer_handled=True)
    state, _ = take_over(stream.events, COORDINATOR)
    stale = b'{"check": 1, "sent_at": "2026-11-22T03:30:00+00:00"}'
    assert restore_sent(state, stale) == state
    assert restore_sent(state, b"{not json") == state
    assert restore_sent(state, b"") == state


def test_watches_and_runs_share_the_active_runs_bucket_without_meeting():
    keys = [watch_key("run-b"), "run-a", watch_key("run-a"), "run-c"]
    assert split_keys(keys) == (["run-a", "run-c"], ["run-a", "run-b"])
    assert not re.fullmatch(ID_PATTERN, watch_key("run-a"))  # no run id is ever a watch's key


def test_an_answer_handed_back_past_a_decision_of_the_clock_is_still_recorded():
    stream = Stream()
    stream.succeed()
    for n in range(23):
        stream.answer(START + n * HOUR + timedelta(seconds=31), n)
        stream.tick(START + (n + 1) * HOUR)  # the next check goes out
    # check 23's answer is in the stream, handed back by another instance, when the daily summary is decided
    stream.answer(START + 23 * HOUR + timedelta(seconds=31), 23, handled=False)
    stream.tick(START + 24 * HOUR)
    assert isinstance(stream.events[-1].data, WatchSummary) and stream.events[-1].causationid is None
    state, [(cause, outputs)] = take_over(stream.events, COORDINATOR)  # the driver died: nobody recorded it
    assert cause.correlationid == check_command_id("run-w", 23)
    assert [o.data.index for o in outputs if isinstance(o.data, WatchCheckCompleted)] == [23]
    assert state.checks_done == 24 and state.summaries == 1
