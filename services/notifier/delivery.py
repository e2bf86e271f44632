"""Delivery: one message to one sink, exactly once, with bounded retries and a bounded time per post.

Retries: 5xx, 408, 429 and connection errors or timeouts are retried with golive's backoff (shared/backoff.py) and
jitter (half the step fixed, half random, so instances that failed together do not retry together); a 429's
``Retry-After`` is honoured (never retried sooner). Any other 4xx is final (a revoked webhook does not come
back). All attempts and waits together stay within the sink's ``give_up_after_s``; then DeliveryFailed.

Exactly once per (event, sink): the ledger, a JetStream KV bucket, records each delivery when the receiver has
confirmed it (or it failed for good), and the event is acked only once each of its deliveries is recorded. Whether a
message was already told is read from the ledger and from nothing else (never from how far a replay got). While a
delivery runs, its ledger key holds a claim (the instance, and a lease it renews): another instance, or this one
restarted, waits for the claim to lapse instead of posting too. The window that remains is
between the receiver accepting the post and the ledger's write being acknowledged: a notifier killed inside
it posts again after restart. Slack webhooks take no idempotency key, so no client can close that window; the
notifier measures it on every delivery (``ledger_window_ms`` in the ``notification.sent`` log line and the
``golive_notifier_ledger_window_seconds`` histogram) and the generic webhook sends an ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from golive.services.notifier.sinks import Outbound
from golive.shared.backoff import Backoff
from golive.shared.buckets import open_bucket
from golive.shared.plan.notifications import NotificationSink
from golive.shared.secrets import redact

LEDGER_TTL_S = 7 * 24 * 3600.0  # far beyond any redelivery; keeps the bucket small
CLAIM_LEASE_S = 10.0  # a killed instance's claim lapses this long after its last renewal; then another posts
RETRYABLE = {408, 429}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one (event, sink) pair."""

    attempts: int = 5
    timeout_s: float = 5.0
    give_up_after_s: float = 120.0
    base_s: float = 0.5
    cap_s: float = 30.0

    @classmethod
    def of(cls, sink: NotificationSink) -> RetryPolicy:
        return cls(attempts=sink.attempts, timeout_s=sink.timeout_s, give_up_after_s=sink.give_up_after_s)

    @property
    def backoff(self) -> Backoff:
        """base_s doubling to cap_s, half of each wait fixed and half random (instances that failed together do not
        retry together); ``attempts`` tries, none starting past ``give_up_after_s``."""
        return Backoff(base_s=self.base_s, cap_s=self.cap_s, jitter=0.5, attempts=self.attempts,
                       within_s=self.give_up_after_s)


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float | None:
    """A response's Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class DeliveryFailed(Exception):
    """The sink did not take the message within its bound. The text never holds the URL."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class _NotTaken(Exception):
    """One post the receiver did not take, and may take on another try; ``retry_after_s``: what it asked to wait."""

    def __init__(self, problem: str, retry_after_s: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after_s = retry_after_s


class _Refused(Exception):
    """The receiver refused the post for good (a 4xx other than 408 and 429)."""


async def post(client: httpx.AsyncClient, url: str, outbound: Outbound, policy: RetryPolicy,
               sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> int:
    """POST ``outbound`` to ``url`` until accepted; return the attempts used, or raise DeliveryFailed."""
    body = json.dumps(outbound.body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **outbound.headers}
    # a Retry-After is the receiver's own word: waited as given, unless it would pass the bound
    retrying = policy.backoff.retrying(_NotTaken, asked=lambda e: getattr(e, "retry_after_s", None), sleep=sleep)
    try:
        async for attempt in retrying:
            with attempt:
                left = policy.give_up_after_s - (time.monotonic() - attempt.retry_state.start_time)
                await _post_once(client, url, body, headers, max(0.0, min(policy.timeout_s, left)))
                return attempt.retry_state.attempt_number
    except _Refused as refused:
        raise DeliveryFailed(f"the receiver refused the message: {refused}", retrying.statistics["attempt_number"]) from None
    except _NotTaken as last:
        tried = retrying.statistics["attempt_number"]
        if tried < policy.attempts:
            raise DeliveryFailed(f"gave up after {tried} attempt(s): {last.problem}; the next try would pass the "
                                 f"{policy.give_up_after_s:g}s bound", tried) from None
        raise DeliveryFailed(f"gave up after {tried} attempt(s): {last.problem}", tried) from None
    raise AssertionError("unreachable")  # the last try returns or raises


async def _post_once(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """One post: returns when the receiver took it; _NotTaken when a retry may help (5xx, 408, 429, no answer, no
    connection); _Refused on any other 4xx."""
    try:
        # httpx's timeout bounds each read, not the whole post: a receiver that trickles bytes is cut here
        async with asyncio.timeout(timeout_s):
            response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except (httpx.TimeoutException, TimeoutError):
        raise _NotTaken(f"no answer within {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise _NotTaken(redact(f"{type(exc).__name__}: {exc}", url)) from None
    if response.status_code < 300:
        return
    problem = f"HTTP {response.status_code} {_short(response)}".strip()
    if response.status_code < 500 and response.status_code not in RETRYABLE:
        raise _Refused(problem)
    raise _NotTaken(problem, retry_after_s(response) if response.status_code == 429 else None)


def _short(response: httpx.Response) -> str:
    # Slack answers errors with a short word (invalid_payload, no_service); keep it, never more
    text = response.text[:60].strip()
    return text if text.replace("_", "").isalnum() else ""


# --- the ledger -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The ledger's answer to "may I deliver this now?": already done (its record), taken by the asker (the
    revision to renew from), or held by another instance whose lease has not lapsed (``held_by``)."""

    done: dict | None = None
    revision: int | None = None
    held_by: str = ""


class LostClaim(Exception):
    """The claim changed under its holder: its lease lapsed and another instance took the delivery over."""


class DeliveryLedger:
    """Which (event, kind, sink) deliveries are done, in a JetStream KV bucket shared by all notifier instances.

    A key holds either the outcome of a delivery (``{"outcome": "sent" | "failed", ...}``) or, while one runs, a claim
    (``{"claim": instance, "until": epoch seconds}``). Claims compare lease ends with this host's clock."""

    def __init__(self, kv) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, replicas: int = 1) -> DeliveryLedger:
        kv = await open_bucket(js, KeyValueConfig(
            bucket=bucket, history=1, ttl=LEDGER_TTL_S, storage=StorageType.FILE, replicas=replicas,
            description="golive notifier: deliveries done, so a redelivered event is not posted twice",
        ))
        return cls(kv)

    @staticmethod
    def key(event_id: str, kind: str, sink: str) -> str:
        # event ids hold characters KV keys may not (':', ' '): a digest is a valid, fixed-size key
        return hashlib.sha256(f"{event_id}\n{kind}\n{sink}".encode()).hexdigest()

    async def get(self, key: str) -> dict | None:
        """The record of a delivery, or None if it has not happened (a claim is not a record)."""
        _revision, value = await self._read(key)
        return value if value is not None and "outcome" in value else None

    async def claim(self, key: str, owner: str, lease_s: float = CLAIM_LEASE_S) -> Claim:
        """Take the delivery ``key`` for ``owner`` unless it is done or another instance's lease still runs."""
        revision, value = await self._read(key)
        if value is not None and "outcome" in value:
            return Claim(done=value)
        if value is not None and value.get("claim") != owner and value.get("until", 0) > time.time():
            return Claim(held_by=str(value.get("claim")))
        claim = json.dumps({"claim": owner, "until": time.time() + lease_s}).encode()
        try:
            if revision is None:
                return Claim(revision=await self.kv.create(key, claim))
            return Claim(revision=await self.kv.update(key, claim, last=revision))
        except KeyWrongLastSequenceError:  # another instance was faster: look again
            return await self.claim(key, owner, lease_s)

    async def renew(self, key: str, owner: str, revision: int, lease_s: float = CLAIM_LEASE_S) -> int:
        """Extend ``owner``'s claim held at ``revision``; the new revision, or LostClaim if the key changed since."""
        claim = json.dumps({"claim": owner, "until": time.time() + lease_s}).encode()
        try:
            return await self.kv.update(key, claim, last=revision)
        except KeyWrongLastSequenceError as exc:
            raise LostClaim(f"the claim on {key[:12]} changed: another instance took the delivery over") from exc

    async def _read(self, key: str) -> tuple[int | None, dict | None]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:  # never written, deleted or expired
            return None, None
        if entry.value is None:
            return entry.revision, None
        return entry.revision, json.loads(entry.value)

    async def record(self, key: str, outcome: dict) -> None:
        """Write (and wait for the server to acknowledge) that the delivery is done."""
        await self.kv.put(key, json.dumps(outcome).encode())
