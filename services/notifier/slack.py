"""Slack incoming-webhook messages in the runbook's attachment format."""

from __future__ import annotations

import asyncio

import httpx

from shared.commands import Notify

COLORS = {"start": "warning", "success": "good", "rollback": "danger", "needs_human": "danger"}
ICONS = {"start": "🚀", "success": "✅", "rollback": "🚨", "needs_human": "🆘"}


def render(notice: Notify) -> dict:
    """The runbook's payload: text plus one attachment with short fields, coloured by kind."""
    return {
        "text": f"{ICONS[notice.kind]} {notice.title}",
        "attachments": [
            {
                "color": COLORS[notice.kind],
                "fields": [{"title": k, "value": v, "short": True} for k, v in notice.fields.items()],
            }
        ],
    }


class DeliveryError(Exception):
    """The webhook did not accept the message after bounded retries. The text never holds the URL."""


async def post(url: str, payload: dict, attempts: int = 4, timeout_s: float = 5.0) -> int:
    """POST ``payload``; retry 429 and 5xx (honouring Retry-After) and connection errors. Returns attempts used."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for attempt in range(1, attempts + 1):
            delay = 0.5 * 2 ** (attempt - 1)
            try:
                response = await client.post(url, json=payload)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 300:
                    return attempt
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise DeliveryError(f"webhook refused the message: {problem}")
                delay = _retry_after(response) or delay
            if attempt < attempts:
                await asyncio.sleep(min(delay, 30.0))
    raise DeliveryError(f"webhook unavailable after {attempts} attempts: {problem}")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
