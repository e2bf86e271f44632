"""Slack delivery against a real local HTTP server speaking the incoming-webhook protocol."""

from __future__ import annotations

import pytest

from services.notifier.slack import DeliveryError, post, render
from shared.commands import Notify, SinkSpec


def notice(kind: str = "rollback") -> Notify:
    return Notify(sink=SinkSpec(webhook_url_env="X"), kind=kind, title="Supabase Production Rollback Triggered",
                  fields={"Action": "Rollback to previous deployment", "Reason": "p95 512 ms > 400 ms"})


def test_rollback_message_has_the_runbook_shape():
    payload = render(notice())
    assert payload["text"] == "🚨 Supabase Production Rollback Triggered"
    assert payload["attachments"][0]["color"] == "danger"
    assert payload["attachments"][0]["fields"][1] == {"title": "Reason", "value": "p95 512 ms > 400 ms", "short": True}


async def test_post_retries_server_errors_and_rate_limits_then_delivers(webhook):
    webhook.fail_next = [500, 429]
    attempts = await post(webhook.url, render(notice()))
    assert attempts == 3
    assert webhook.texts() == ["🚨 Supabase Production Rollback Triggered"]


async def test_refused_post_fails_without_retry_and_without_the_url_in_the_error(webhook):
    webhook.fail_next = [404]
    with pytest.raises(DeliveryError) as caught:
        await post(webhook.url, render(notice()))
    assert "404" in str(caught.value)
    assert webhook.url not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert webhook.received == []
