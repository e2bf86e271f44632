"""A generic webhook: the run event as a structured-mode CloudEvent (application/cloudevents+json).

The body is the event exactly as it sits on the bus, plus the rendered message as CloudEvents extension
attributes (``notifykind``, ``notifyseverity``, ``notifytext``: the message's first line, plain text, no HTML entity
nor Slack escape, with the run's report link when the plan gives one; ``notifylink``: that link). The event id is
also sent as ``Idempotency-Key``: the one case where golive may repeat a post (see delivery.py) is then recognisable.
"""

from __future__ import annotations

import json

from golive.services.notifier.sinks import Outbound, sink_type
from golive.services.notifier.templates import Notice
from golive.shared.plan.notifications import NotificationSink


@sink_type("webhook")
class CloudEventWebhook:
    """Any HTTP endpoint that accepts CloudEvents in structured mode."""

    def __init__(self, config: NotificationSink) -> None:
        self.config = config

    def outbound(self, notice: Notice) -> Outbound:
        body = json.loads(notice.event.to_json())
        body["notifykind"] = notice.kind
        body["notifyseverity"] = notice.severity
        body["notifytext"] = notice.first_line
        if notice.link:
            body["notifylink"] = notice.link
        return Outbound(body, {
            "Content-Type": "application/cloudevents+json",
            "Idempotency-Key": f"{notice.event.id}/{notice.kind}",
        })
