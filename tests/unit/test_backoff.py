"""golive's one backoff policy (shared/backoff.py): exact waits for decisions that are replayed, jittered waits within
their bounds, and tenacity's retry loop told what is retried, how often, within what time, and what the other side
asked to wait."""

from __future__ import annotations

import random

import pytest
from tenacity import RetryCallState, Retrying

from golive.shared.backoff import Backoff


def test_exact_waits_double_from_base_to_the_cap():
    backoff = Backoff(base_s=0.5, cap_s=4.0)

    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert backoff.delay(0) == 0.5  # no failed try yet counts as the first
    assert Backoff(base_s=0.5, cap_s=15.0).delay(10_000) == 15.0  # a huge count is the cap, not an overflow
    assert Backoff(base_s=0.0, cap_s=30.0).delay(3) == 0.0  # a zero base never waits


def test_exact_waits_are_the_same_on_every_call_and_draw_no_random_number():
    backoff = Backoff(base_s=2.0, cap_s=60.0)
    random.seed(7)
    state = random.getstate()

    first = [backoff.delay(n) for n in range(1, 10)]
    again = [backoff.delay(n) for n in range(1, 10)]

    assert first == again == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    assert random.getstate() == state  # a replayed decision cannot depend on the random generator


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jittered_waits_keep_their_fixed_share_vary_above_it_and_never_pass_the_cap(jitter):
    backoff = Backoff(base_s=1.0, cap_s=8.0, jitter=jitter)

    for n in range(1, 8):
        step = min(8.0, 2.0 ** (n - 1))
        samples = [backoff.delay(n) for _ in range(300)]
        assert all(step * (1 - jitter) <= w <= step for w in samples), (n, min(samples), max(samples))
        assert len(set(samples)) > 1  # jittered
        # the random share spreads over its range, not clumped at one end
        assert min(samples) < step * (1 - jitter / 2) < max(samples)


@pytest.mark.parametrize("bad", [dict(base_s=-1.0, cap_s=1.0), dict(base_s=1.0, cap_s=-1.0),
                                 dict(base_s=1.0, cap_s=1.0, jitter=1.5), dict(base_s=1.0, cap_s=1.0, attempts=0)])
def test_a_backoff_that_cannot_mean_anything_is_refused(bad):
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**bad)


def after(seconds: float, attempt: int, upcoming_s: float) -> RetryCallState:
    """tenacity's state after try ``attempt`` failed ``seconds`` after the first began, ``upcoming_s`` to wait."""
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number, state.outcome_timestamp, state.upcoming_sleep = attempt, state.start_time + seconds, upcoming_s
    return state


def test_stops_after_its_attempts_or_when_the_next_try_would_start_past_its_time():
    stop = Backoff(base_s=1.0, cap_s=8.0, attempts=4, within_s=10.0).stop()

    assert not stop(after(1.0, 1, 1.0))
    assert stop(after(1.0, 4, 1.0))  # the fourth try was the last
    assert not stop(after(5.0, 2, 4.0))  # the next try starts at 9 s
    assert stop(after(6.0, 2, 4.0))  # it would start at 10 s: no try starts that late
    assert not Backoff(base_s=1.0, cap_s=8.0).stop()(after(3600.0, 1000, 8.0))  # no bounds: tries on


class Flaky:
    """Fails with the given failures in order, then answers "ok"; counts its tries."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures, self.tries = list(failures), 0

    async def __call__(self) -> str:
        self.tries += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Sleeps:
    """A sleep that only writes down how long it was asked to sleep."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def run(retrying, call: Flaky) -> str:
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable")


async def test_retrying_waits_the_backoff_between_tries_until_an_answer():
    call, sleeps = Flaky(ConnectionError("down"), ConnectionError("down")), Sleeps()

    assert await run(Backoff(base_s=0.5, cap_s=10.0, attempts=5).retrying(ConnectionError, sleep=sleeps), call) == "ok"

    assert call.tries == 3 and sleeps.waits == [0.5, 1.0]


async def test_retrying_raises_the_last_failure_itself_when_its_attempts_run_out():
    call, sleeps = Flaky(*(ConnectionError(f"try {n}") for n in range(1, 6))), Sleeps()

    with pytest.raises(ConnectionError, match="try 3"):
        await run(Backoff(base_s=0.5, cap_s=0.75, attempts=3).retrying(ConnectionError, sleep=sleeps), call)

    assert call.tries == 3 and sleeps.waits == [0.5, 0.75]


async def test_a_failure_that_is_not_retried_is_raised_at_once():
    call, sleeps = Flaky(PermissionError("refused"), ConnectionError("down")), Sleeps()

    with pytest.raises(PermissionError):
        await run(Backoff(base_s=0.5, cap_s=10.0, attempts=5).retrying(ConnectionError, sleep=sleeps), call)
    assert call.tries == 1 and sleeps.waits == []

    call = Flaky(ValueError("transient"), ValueError("fatal"))
    with pytest.raises(ValueError, match="fatal"):  # a predicate chooses by the failure itself
        await run(Backoff(base_s=0.5, cap_s=10.0).retrying(lambda e: "transient" in str(e), sleep=sleeps), call)
    assert call.tries == 2 and sleeps.waits == [0.5]


class Busy(Exception):
    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__(f"busy, retry after {retry_after_s}")
        self.retry_after_s = retry_after_s


async def test_a_wait_the_other_side_asks_for_replaces_the_backoff():
    call, sleeps = Flaky(Busy(7.0), Busy(None), Busy(0.0)), Sleeps()
    backoff = Backoff(base_s=0.5, cap_s=10.0, jitter=0.5, attempts=5)

    assert await run(backoff.retrying(Busy, asked=lambda e: getattr(e, "retry_after_s", None), sleep=sleeps), call) == "ok"

    asked, backed_off, asked_none = sleeps.waits
    assert asked == 7.0 and asked_none == 0.0  # as asked, beyond the cap and without jitter
    assert 0.5 <= backed_off <= 1.0  # nothing asked: the second jittered step


async def test_before_sleep_is_told_of_each_wait_with_the_failed_try():
    told: list[tuple[int, str]] = []

    async def say(state: RetryCallState) -> None:
        told.append((state.attempt_number, str(state.outcome.exception())))

    call = Flaky(ConnectionError("first"), ConnectionError("second"))
    assert await run(Backoff(base_s=0.0, cap_s=0.0, attempts=3).retrying(ConnectionError, before_sleep=say), call) == "ok"

    assert told == [(1, "first"), (2, "second")]
