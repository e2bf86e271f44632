"""Feeding run events to notifier processes and reading what they report, over the real broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing

import nats

from golive.shared.envelope import Envelope
from golive.shared.event_log import read_events
from golive.shared.events import NotificationSent
from golive.stack.webhook_sink import WebhookSink
from tests.notifier.run_events import plan_dict

HOOK_SINK = {"hook": {"type": "webhook", "webhook_url_env": "GOLIVE_SLACK_WEBHOOK_URL"}}


def hook_plan(**sink_settings) -> dict:
    """The skeleton plan whose one sink is the generic webhook: each post is the CloudEvent, so the receiver sees
    which event (``id``) and which moment (``notifykind``) it carries."""
    return plan_dict(sinks={"hook": {**HOOK_SINK["hook"], **sink_settings}})


async def publish(settings, *events: Envelope) -> None:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        for e in events:
            await js.publish(e.subject, e.to_json(), stream=settings.subjects.event_stream, headers={"Nats-Msg-Id": e.id})
    finally:
        await nc.close()


async def wait_for_event(settings, run_id: str, match, timeout_s: float = 30.0) -> Envelope:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        async def first() -> Envelope:
            async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run(run_id), follow=True)) as feed:
                async for _seq, envelope in feed:
                    if match(envelope):
                        return envelope
        return await asyncio.wait_for(first(), timeout_s)
    finally:
        await nc.close()


def sent(kind: str):
    return lambda e: isinstance(e.data, NotificationSent) and e.data.kind == kind


def delivered(webhook: WebhookSink) -> Counter[tuple[str, str]]:
    """How many times the receiver accepted each (event id, moment kind)."""
    return Counter((m["id"], m["notifykind"]) for m in webhook.received)


async def until(webhook: WebhookSink, condition, timeout_s: float = 60.0) -> bool:
    return await asyncio.to_thread(webhook.wait_until, condition, timeout_s)
