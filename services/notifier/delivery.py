"""Delivery: one message to one sink, exactly once, with bounded retries and a bounded time per post.

Retries: 5xx, 408, 429 and connection errors or timeouts are retried with exponential backoff and jitter
(half the step fixed, half random, so instances that failed together do not retry together); a 429's
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
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from services.notifier.sinks import Outbound
from shared.buckets import open_bucket
from shared.plan.notifications import NotificationSink
from shared.secrets import redact

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


def backoff_s(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Wait after failed attempt ``attempt`` (1-based): half of base * 2^(attempt-1) (capped), plus a random half."""
    step = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


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


async def post(client: httpx.AsyncClient, url: str, outbound: Outbound, policy: RetryPolicy,
               sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> int:
    """POST ``outbound`` to ``url`` until accepted; return the attempts used, or raise DeliveryFailed."""
    deadline = time.monotonic() + policy.give_up_after_s
    body = json.dumps(outbound.body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **outbound.headers}
    problem = "not tried"
    for attempt in range(1, policy.attempts + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryFailed(f"gave up after {attempt - 1} attempt(s) in {policy.give_up_after_s:g}s: {problem}",
                                 attempt - 1)
        wait: float | None = None
        try:
            # httpx's timeout bounds each read, not the whole post: a receiver that trickles bytes is cut here
            async with asyncio.timeout(min(policy.timeout_s, left)):
                response = await client.post(url, content=body, headers=headers, timeout=min(policy.timeout_s, left))
        except (httpx.TimeoutException, TimeoutError):
            problem = f"no answer within {min(policy.timeout_s, left):g}s"
        except httpx.HTTPError as exc:
            problem = redact(f"{type(exc).__name__}: {exc}", url)
        else:
            if response.status_code < 300:
                return attempt
            problem = f"HTTP {response.status_code} {_short(response)}".strip()
            if response.status_code < 500 and response.status_code not in RETRYABLE:
                raise DeliveryFailed(f"the receiver refused the message: {problem}", attempt)
            if response.status_code == 429:
                wait = retry_after_s(response)
        if attempt == policy.attempts:
            break
        if wait is None:  # a Retry-After is the receiver's own word: waited as given
            wait = backoff_s(attempt, policy)
        if time.monotonic() + wait >= deadline:
            raise DeliveryFailed(f"gave up after {attempt} attempt(s): {problem}; the next try would pass the "
                                 f"{policy.give_up_after_s:g}s bound", attempt)
        await sleep(wait)
    raise DeliveryFailed(f"gave up after {policy.attempts} attempt(s): {problem}", policy.attempts)


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
