"""Notifier service shell: reads run events from GOLIVE_EVT, posts the messages they make due.

The notifier has its own durable consumer on the event stream; the coordinator never sends it anything and
never waits for it, so a slow or dead Slack cannot hold up a run or its rollback. Per run it keeps a view
folded from the run's events (moments.py); a run it has not seen (after a restart) is rebuilt by replaying
the run's events from the stream. For each moment: routing (routing.py) picks sinks and templates, the
template renders (templates.py), the sink shapes the request (sinks/), delivery posts it with bounded
retries and records it in the ledger before the event is acked (delivery.py). Each delivery ends in
NotificationSent or NotificationFailed on the stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import deque
from contextlib import aclosing

import httpx
from prometheus_client import Counter, Histogram

from services.notifier.delivery import DeliveryFailed, DeliveryLedger, RetryPolicy, post
from services.notifier.moments import Moment, RunView, observe
from services.notifier.routing import Route, routes_for
from services.notifier.sinks import UnknownSink, sink_for
from services.notifier.templates import render_moment
from shared.bus import Bus
from shared.envelope import Envelope
from shared.event_log import read_events
from shared.events import NotificationFailed, NotificationSent, RunStarted
from shared.secrets import MissingSecret, redact, secret_from_env

# Test-only fault injection: set to ``recorded`` (or ``recorded:<kind>``), the process SIGKILLs itself right
# after the ledger write of a delivery (of that kind), after the post and before the event is acked
# (tests/notifier/test_notifier_service.py). Never set it outside tests.
KILL_AT_ENV = "GOLIVE_NOTIFIER_TEST_KILL_AT"
FINISHED_RUNS_KEPT = 1_000


class Notifier:
    """Folds run events into views and delivers the moments they make due."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.runs: dict[str, RunView] = {}
        self.finished: deque[str] = deque(maxlen=FINISHED_RUNS_KEPT)  # told to the end, or never started
        self.ledger: DeliveryLedger | None = None
        self.kill_at = os.environ.get(KILL_AT_ENV, "")
        registry = bus.metrics.registry
        self.deliveries = Counter("golive_notifier_deliveries_total", "Deliveries by sink, kind and outcome",
                                  ["sink", "kind", "outcome"], registry=registry)
        self.window = Histogram(
            "golive_notifier_ledger_window_seconds",
            "From the receiver accepting a post to the ledger write acknowledged: a crash inside repeats the post",
            registry=registry, buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )

    @property
    def ledger_bucket(self) -> str:
        return f"{self.bus.subjects.root.upper()}_NOTIFICATIONS"

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        if envelope.source == self.bus.source or envelope.runid in self.finished:
            return  # our own reports, and late events of runs already told
        view = self.runs.get(envelope.runid)
        if view is None and not isinstance(envelope.data, RunStarted):
            view = await self._replay(envelope.runid, before_seq=seq)
            if view is None:
                # RunStarted is a run's first event: without it before this one, it never comes
                self.finished.append(envelope.runid)
                return  # a run that never started (a refused start, a test's commands): nothing to tell
        view, moments = observe(view, envelope)
        for moment in moments:
            await self._announce(view, moment)
        if view is not None:
            if view.outcome is not None and not view.watching:
                self.runs.pop(view.run_id, None)
                self.finished.append(view.run_id)
            else:
                self.runs[view.run_id] = view

    async def _replay(self, run_id: str, before_seq: int) -> RunView | None:
        js = self.bus.broker.connection.jetstream()
        view: RunView | None = None
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id), up_to_seq=before_seq - 1)) as feed:
            async for _seq, envelope in feed:
                if envelope.source != self.bus.source:
                    view, _ = observe(view, envelope)  # moments already told (or missed) before the restart
        if view is not None:
            self.bus.log.info("run.replayed", run_id=run_id, step=view.step)
        return view

    async def _announce(self, view: RunView, moment: Moment) -> None:
        routes = routes_for(view.notifications, moment.kind)
        # every sink at once: a slow one does not delay the others
        await asyncio.gather(*(self._deliver(view, moment, route) for route in routes))

    async def _deliver(self, view: RunView, moment: Moment, route: Route) -> None:
        spec = view.notifications
        config = spec.sinks[route.sink]
        log = self.bus.log.bind(run_id=view.run_id, kind=moment.kind, sink=route.sink, event_id=moment.event.id)
        if self.ledger is None:
            self.ledger = await DeliveryLedger.open(self.bus.broker.connection.jetstream(), self.ledger_bucket)
        key = DeliveryLedger.key(moment.event.id, moment.kind, route.sink)
        done = await self.ledger.get(key)
        if done is not None:
            log.info("notification.already_delivered", outcome=done.get("outcome"))
            await self._report(view, moment, route, done)  # same id as before: the stream drops a duplicate
            return

        def template_problem(name: str, problem: str) -> None:
            log.warning("notification.template_failed", template=name, problem=redact(problem))

        notice = render_moment(spec, route.template, moment.kind, moment.context, moment.event, template_problem)
        if not route.admits(notice.severity):
            return
        started = time.perf_counter()
        try:
            sink = sink_for(config)
            url = secret_from_env(config.webhook_url_env)
            async with httpx.AsyncClient(follow_redirects=False) as client:
                attempts = await post(client, url, sink.outbound(notice), RetryPolicy.of(config))
        except (MissingSecret, UnknownSink, ValueError) as exc:
            outcome = {"outcome": "failed", "attempts": 0, "reason": redact(str(exc))}
        except DeliveryFailed as exc:
            outcome = {"outcome": "failed", "attempts": exc.attempts, "reason": redact(exc.reason)}
        else:
            accepted = time.perf_counter()
            outcome = {"outcome": "sent", "attempts": attempts, "severity": notice.severity, "text": notice.text}
            await self.ledger.record(key, outcome)
            window = time.perf_counter() - accepted
            self.window.observe(window)
            log.info("notification.sent", attempts=attempts, seconds=round(accepted - started, 3),
                     ledger_window_ms=round(window * 1000, 3))
            self._fault_point("recorded", moment.kind)
            await self._report(view, moment, route, outcome)
            return
        await self.ledger.record(key, outcome)  # a redelivery must not start the retries over
        log.warning("notification.failed", attempts=outcome["attempts"], reason=outcome["reason"],
                    seconds=round(time.perf_counter() - started, 3))
        await self._report(view, moment, route, outcome)

    async def _report(self, view: RunView, moment: Moment, route: Route, outcome: dict) -> None:
        base = f"{moment.event.id}/{moment.kind}/{route.sink}"
        # correlated to the notification itself: never to a command the coordinator awaits
        if outcome.get("outcome") == "sent":
            data = NotificationSent(kind=moment.kind, sink=route.sink, attempts=outcome["attempts"],
                                    event_id=moment.event.id, severity=outcome.get("severity", ""),
                                    text=redact(outcome.get("text", "")))
            await self.bus.emit(data, run_id=view.run_id, event_id=f"{base}/sent", cause=moment.event, correlationid=base)
        else:
            data = NotificationFailed(kind=moment.kind, sink=route.sink, attempts=outcome.get("attempts", 0),
                                      reason=outcome.get("reason", ""), event_id=moment.event.id)
            await self.bus.emit(data, run_id=view.run_id, event_id=f"{base}/failed", cause=moment.event, correlationid=base)
        self.deliveries.labels(route.sink, moment.kind, outcome.get("outcome", "")).inc()

    def _fault_point(self, point: str, kind: str) -> None:
        if self.kill_at in (point, f"{point}:{kind}"):
            self.bus.log.warning("notifier.test_kill", point=point)
            os.kill(os.getpid(), signal.SIGKILL)


def register(bus: Bus) -> Notifier:
    """Wire the notifier onto ``bus``: its own durable consumer on the event stream."""
    # httpx logs every request with its full URL at INFO; a webhook URL is a secret
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    notifier = Notifier(bus)
    bus.consume_events(bus.subjects.all_events, "notifier-events", notifier.on_event)
    return notifier
