"""Delivery against a real local HTTP server speaking Slack's incoming-webhook protocol, and the ledger in
a real JetStream KV bucket."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
import nats
import pytest

from golive.services.notifier.delivery import DeliveryFailed, DeliveryLedger, RetryPolicy, post, retry_after_s
from golive.services.notifier.sinks import Outbound
from golive.stack.webhook_sink import WebhookSink

MESSAGE = Outbound({"text": "🚨 skeleton Production Rollback Triggered", "attachments": []})
FAST = RetryPolicy(attempts=4, timeout_s=5.0, give_up_after_s=60.0, base_s=0.05, cap_s=0.2)


async def deliver(sink: WebhookSink, policy: RetryPolicy = FAST) -> int:
    async with httpx.AsyncClient() as client:
        return await post(client, sink.url, MESSAGE, policy)


async def test_server_error_twice_then_ok_delivers_one_message(webhook):
    webhook.fail_next = [500, 500]

    attempts = await deliver(webhook)

    assert attempts == 3
    assert [a.status for a in webhook.attempts] == [500, 500, 200]
    assert webhook.texts() == ["🚨 skeleton Production Rollback Triggered"]


async def test_rate_limited_post_waits_at_least_retry_after_before_the_next_try(webhook):
    webhook.fail_next = [429]
    webhook.retry_after = "2"

    attempts = await deliver(webhook)

    assert attempts == 2
    first, second = webhook.attempts
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 2.0  # the receiver's clock: the retry came no sooner than it asked
    assert len(webhook.received) == 1


async def test_rate_limited_post_is_given_up_when_the_wait_asked_for_would_pass_the_bound(webhook):
    webhook.fail_next = [429]
    webhook.retry_after = "30"

    with pytest.raises(DeliveryFailed) as caught:
        await deliver(webhook, RetryPolicy(attempts=4, give_up_after_s=10.0, base_s=0.05, cap_s=0.2))

    assert caught.value.attempts == 1 and "HTTP 429" in caught.value.reason
    assert "the next try would pass the 10s bound" in caught.value.reason
    assert len(webhook.attempts) == 1 and webhook.received == []


async def test_refused_post_is_final_and_the_error_holds_no_url(webhook):
    webhook.fail_next = [404]

    with pytest.raises(DeliveryFailed) as caught:
        await deliver(webhook)

    assert caught.value.attempts == 1 and "404" in caught.value.reason
    assert webhook.url not in caught.value.reason and "127.0.0.1" not in caught.value.reason
    assert webhook.received == []


async def test_receiver_that_never_answers_is_given_up_within_the_bound(webhook):
    webhook.hang = True

    with pytest.raises(DeliveryFailed) as caught:
        await deliver(webhook, RetryPolicy(attempts=2, timeout_s=0.3, give_up_after_s=10.0, base_s=0.05))

    assert caught.value.attempts == 2 and "no answer within 0.3s" in caught.value.reason
    assert len(webhook.attempts) == 2 and webhook.received == []


async def test_unreachable_receiver_error_names_no_url():
    with WebhookSink() as gone:
        url = gone.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(DeliveryFailed) as caught:
            await post(client, url, MESSAGE, RetryPolicy(attempts=2, base_s=0.01))
    assert "ConnectError" in caught.value.reason and url not in caught.value.reason


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = RetryPolicy(base_s=1.0, cap_s=8.0)
    waits = [[policy.backoff.delay(n) for _ in range(200)] for n in (1, 2, 3, 4, 5, 6)]

    for n, samples in enumerate(waits, start=1):
        step = min(8.0, 2 ** (n - 1))
        assert all(step / 2 <= w <= step for w in samples)
        assert len(set(samples)) > 1  # jittered
    assert max(waits[5]) <= 8.0


async def test_ledger_remembers_a_delivery_across_connections(nats_url):
    bucket = f"T{secrets.token_hex(4)}_NOTIFICATIONS"
    key = DeliveryLedger.key("run-1.3.stage1:hold/probes_completed", "stage_passed", "slack")
    nc = await nats.connect(nats_url)
    try:
        ledger = await DeliveryLedger.open(nc.jetstream(), bucket)
        assert await ledger.get(key) is None
        await ledger.record(key, {"outcome": "sent", "attempts": 2})
    finally:
        await nc.close()

    nc = await nats.connect(nats_url)
    try:
        again = await DeliveryLedger.open(nc.jetstream(), bucket)
        assert await again.get(key) == {"outcome": "sent", "attempts": 2}
        assert await again.get(DeliveryLedger.key("run-1/other", "stage_passed", "slack")) is None
        await nc.jetstream().delete_key_value(bucket)
    finally:
        await nc.close()


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 1, 4, 2, 0, 0, tzinfo=UTC)

    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after_s(answer("2"), now) == 2.0
    assert retry_after_s(answer("Sun, 04 Jan 2026 02:00:07 GMT"), now) == 7.0
    assert retry_after_s(answer("Sun, 04 Jan 2026 01:59:00 GMT"), now) == 0.0  # already past: no wait
    assert retry_after_s(answer("soon"), now) is None
    assert retry_after_s(httpx.Response(429), now) is None
