"""Backoff: how long golive waits before trying something again, and when it stops trying. One policy for every
retry in golive, each use configuring its own numbers (find them all with ``grep -rn "Backoff("``).

The wait is exponential: ``base_s`` after the first failed try, doubling after each one, never more than ``cap_s``.
``jitter`` is the random share of each wait: 0 gives exact waits (a decision replayed from events must compute the
same delay every time); 0.5 keeps half of each wait fixed and draws the other half at random, so instances that
failed together do not all come back at once. A wait the other side asked for (HTTP ``Retry-After``) replaces the
backoff. ``attempts`` bounds the tries, the first included; ``within_s`` bounds the time: no try starts later than
that after the first one.

Built on tenacity, whose wait strategies are plain objects that can be asked for one wait without running a loop.
That gives the two kinds of user one rule:

- I/O code retries with ``Backoff.retrying()``, tenacity's AsyncRetrying (``async for attempt in ...: with attempt:``),
  told what is retried and what the other side asked for;
- pure decisions that schedule the next try instead of sleeping (the saga's retry of a step, ``golive up``'s restart
  of a crashed service, the bus's redelivery of a crashed command) take ``Backoff.delay(n)``: the same wait,
  computed alone, with no clock and no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, Retrying
from tenacity.retry import retry_if_exception, retry_if_exception_type
from tenacity.stop import stop_after_attempt, stop_base, stop_before_delay, stop_never
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential

Failure = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
AskedWait = Callable[[BaseException], float | None]
BeforeSleep = Callable[[RetryCallState], Awaitable[None] | None]

# a wait strategy reads only the attempt number of the state it is given; the state needs a retrying object all the
# same, and this one never runs
_NO_LOOP = Retrying()


@dataclass(frozen=True)
class Backoff:
    """Wait ``base_s`` after the first failed try, doubling, at most ``cap_s``; ``jitter`` (0 to 1) of each wait
    drawn at random. Try at most ``attempts`` times (None: no bound) and start no try later than ``within_s`` after
    the first (None: no bound)."""

    base_s: float
    cap_s: float
    jitter: float = 0.0
    attempts: int | None = None
    within_s: float | None = None

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError(f"backoff: base_s ({self.base_s:g}) and cap_s ({self.cap_s:g}) must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff: jitter {self.jitter:g} is the random share of a wait, from 0 to 1")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"backoff: attempts {self.attempts} must be at least 1 (the first try)")

    def wait(self) -> wait_base:
        """This backoff as a tenacity wait strategy: the fixed share exponential and exact, the jittered share
        uniform between 0 and its own exponential step (both capped in proportion, so the sum stays within cap_s)."""
        fixed = 1.0 - self.jitter
        exact = wait_exponential(multiplier=self.base_s * fixed, max=self.cap_s * fixed)
        if self.jitter == 0.0:
            return exact
        return exact + wait_random_exponential(multiplier=self.base_s * self.jitter, max=self.cap_s * self.jitter)

    def delay(self, failed_tries: int) -> float:
        """The wait after ``failed_tries`` failed tries (1: before the second try): ``base_s * 2 ** (failed_tries - 1)``,
        at most ``cap_s``; with no jitter, the same number on every call. For decisions that schedule a try."""
        state = RetryCallState(_NO_LOOP, fn=None, args=(), kwargs={})
        state.attempt_number = max(1, failed_tries)
        return float(self.wait()(state))

    def stop(self) -> stop_base:
        """When to stop trying, as a tenacity stop condition: after ``attempts`` tries, or when the next wait would
        end past ``within_s``."""
        stop: stop_base = stop_never
        if self.attempts is not None:
            stop = stop | stop_after_attempt(self.attempts)
        if self.within_s is not None:
            stop = stop | stop_before_delay(self.within_s)
        return stop

    def retrying(self, retry_on: Failure, *, asked: AskedWait | None = None, before_sleep: BeforeSleep | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
        """tenacity's retry loop on this backoff, for I/O::

            async for attempt in backoff.retrying(SomeError):
                with attempt:
                    ...

        A failure that ``retry_on`` names (exception types, or a predicate) is tried again after the backoff, or after
        what ``asked`` reads from the failure (a server's Retry-After) when it reads a number. When the tries or the
        time run out, or on a failure ``retry_on`` does not name, the failure is raised as it is (never wrapped).
        ``before_sleep`` (awaited when it is async) is told of each wait before it starts; tenacity's
        ``attempt.retry_state.attempt_number`` numbers the tries from 1."""
        backoff = self.wait()

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome is not None else None
            wanted = asked(failure) if asked is not None and failure is not None else None
            return backoff(state) if wanted is None else wanted

        retry = (retry_if_exception(retry_on) if callable(retry_on) and not isinstance(retry_on, type)
                 else retry_if_exception_type(retry_on))
        return AsyncRetrying(retry=retry, wait=wait, stop=self.stop(), before_sleep=before_sleep, sleep=sleep,
                             reraise=True)
