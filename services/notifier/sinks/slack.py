"""Slack incoming webhooks: the runbook's attachment format, or Block Kit (``format: blocks``).

Attachments (the runbook's shape): ``{"text": ..., "attachments": [{"color": ..., "fields": [{"title",
"value", "short": true}]}]}``, colour good / warning / danger or a hex value. Block Kit: a section with the
text and a section of fields (``*Title*\\nvalue``), inside an attachment so the colour bar stays. Slack wants
``&``, ``<`` and ``>`` escaped in text it formats (and nothing else: it shows them as typed, and would show
any other entity as typed too). The run's report link goes on the first line as a Slack link, ``<url|report>``.
"""

from __future__ import annotations

from golive.services.notifier.sinks import Outbound, sink_type
from golive.services.notifier.templates import Notice
from golive.shared.plan.notifications import NotificationSink

COLORS = {"info": "#439FE0", "success": "good", "warning": "warning", "danger": "danger", "critical": "danger"}
MAX_BLOCK_FIELDS = 10  # Slack's limit for a section's fields


@sink_type("slack")
class SlackWebhook:
    """Slack incoming webhook. Settings: ``format: attachments`` (default) or ``blocks``."""

    def __init__(self, config: NotificationSink) -> None:
        extra = config.model_extra or {}
        self.format = extra.get("format", "attachments")
        if self.format not in ("attachments", "blocks"):
            raise ValueError(f"slack sink format {self.format!r}: use attachments or blocks")

    def outbound(self, notice: Notice) -> Outbound:
        return Outbound(attachments(notice) if self.format == "attachments" else blocks(notice))


def attachments(notice: Notice) -> dict:
    """The runbook's payload: text plus one attachment with short fields, coloured by severity."""
    return {
        "text": first_line(notice),
        "attachments": [{
            "color": COLORS.get(notice.severity, "#439FE0"),
            "fields": [{"title": escape(t), "value": escape(v), "short": True} for t, v in notice.fields],
        }],
    }


def blocks(notice: Notice) -> dict:
    """Block Kit: ``text`` stays as the notification fallback; the blocks carry text and fields."""
    layout: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": first_line(notice)}}]
    fields = [{"type": "mrkdwn", "text": f"*{escape(t)}*\n{escape(v)}"} for t, v in notice.fields]
    for i in range(0, len(fields), MAX_BLOCK_FIELDS):
        layout.append({"type": "section", "fields": fields[i:i + MAX_BLOCK_FIELDS]})
    return {
        "text": first_line(notice),
        "attachments": [{"color": COLORS.get(notice.severity, "#439FE0"), "blocks": layout}],
    }


def first_line(notice: Notice) -> str:
    """The message's text, escaped, with the run's report as a link when the plan gives one."""
    text = escape(notice.text)
    if not notice.link or notice.link in notice.text:
        return text
    # inside <...|...> a "|" would end the address and ">" the link: they are percent-encoded, the rest escaped
    url = escape(notice.link.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C"))
    return f"{text} · <{url}|report>"


def escape(text: str) -> str:
    """Slack's three control characters, as its formatting guide asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
