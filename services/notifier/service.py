"""Notifier service shell: reads run events from GOLIVE_EVT, posts the messages they make due.

The notifier has its own durable consumer on the event stream; the coordinator never sends it anything and
never waits for it, so a slow or dead Slack cannot hold up a run or its rollback. Per run it keeps a view
folded from the run's events (moments.py); a run it has not seen (after a restart) is rebuilt by replaying
the run's events from the stream. For each moment: routing (routing.py) picks sinks and templates, the
template renders (templates.py), the sink shapes the request (sinks/). Each delivery ends in NotificationSent
or NotificationFailed on the stream.

Exactly once, whatever order events come back in after a crash: an event's moments are a pure function of the run's
events up to it, so an event that comes again after later ones were folded (its first reader died with its post in
flight) gets its moments from a replay up to it. Whether a moment was told is read from the ledger only
(delivery.py): a delivery is claimed there, posted, and its outcome recorded. The event is acked only when every
one of its deliveries has an outcome in the ledger; until then it is handed back (Defer) and checked again when it
returns, so a notifier killed mid-post leaves the event unacked and a claim that lapses: whoever gets the event
next posts it. Posting happens in delivery lanes (lanes.py), not in the event handler: one run's hung posts or
retries never hold up another run's messages, nor a rollback alert its run's start message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import httpx
import nats
from prometheus_client import Counter, Histogram

from golive.services.notifier.delivery import (
    CLAIM_LEASE_S,
    DeliveryFailed,
    DeliveryLedger,
    LostClaim,
    RetryPolicy,
    post,
)
from golive.services.notifier.lanes import Lanes, lane_of
from golive.services.notifier.moments import Moment, observe
from golive.services.notifier.routing import Route, routes_for
from golive.services.notifier.run_view import RunView
from golive.services.notifier.sinks import UnknownSink, sink_for
from golive.services.notifier.templates import Notice, render_moment
from golive.shared.bus import Bus, Defer
from golive.shared.envelope import Envelope
from golive.shared.events import NotificationFailed, NotificationSent, RunStarted
from golive.shared.fold import RunFolds
from golive.shared.plan.notifications import NotificationSink
from golive.shared.secrets import MissingSecret, redact, secret_from_env

# Test-only fault injection: set to ``recorded`` (or ``recorded:<kind>``), the process SIGKILLs itself right
# after the ledger write of a delivery (of that kind), after the post and before the event is acked
# (tests/notifier/test_notifier_service.py). Never set it outside tests.
KILL_AT_ENV = "GOLIVE_NOTIFIER_TEST_KILL_AT"
FINISHED_RUNS_KEPT = 1_000
EVENTS_KEPT = 10_000  # events whose deliveries this instance tracks; one forgotten costs a replay if it comes again
RECHECK_S = 1.0  # an event whose messages are still being delivered comes back this soon to be acked


@dataclass
class Delivery:
    """One message due: a moment to one sink, rendered. ``state``: new (not claimed here), posting (in a lane), or
    settled (its outcome is in the ledger)."""

    run_id: str
    moment: Moment
    route: Route
    config: NotificationSink
    notice: Notice
    key: str
    state: str = "new"
    revision: int = 0  # of this instance's claim
    outcome: dict | None = field(default=None)  # posted, not yet in the ledger
    accepted: float | None = None  # when the receiver took it (perf_counter)


class Notifier:
    """Folds run events into views and delivers the moments they make due."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        # each run's view and the stream sequence of the last event folded into it; runs told to the end, or that never
        # started, with their last sequence
        self.folds: RunFolds[RunView] = RunFolds(bus.jetstream, bus.subjects, FINISHED_RUNS_KEPT)
        self.pending: OrderedDict[str, list[Delivery]] = OrderedDict()  # by event id: not all settled yet
        self.ledger: DeliveryLedger | None = None
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
        self.lanes = Lanes(self._deliver, bus.log)
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
        """Ack (return) once every message ``envelope`` makes due is in the ledger; else hand it back (Defer)."""
        if envelope.source == self.bus.source:
            return  # our own reports
        try:
            deliveries = self.pending.get(envelope.id)
            if deliveries is None:
                view, moments = await self._moments_of(envelope, seq)
                deliveries = [d for m in moments for d in self._deliveries(view, m)]
                if not deliveries:
                    return
                self._track(envelope.id, deliveries)
            if await self._settle(deliveries):
                self.pending.pop(envelope.id, None)
                return
        except (nats.errors.Error, TimeoutError) as exc:  # the bus or the ledger is unwell: never give a message up
            self.bus.log.warning("notification.ledger_unavailable", run_id=envelope.runid, event_id=envelope.id,
                                 error=redact(f"{type(exc).__name__}: {exc}"))
            raise Defer(RECHECK_S * 5) from exc
        raise Defer(RECHECK_S)

    # --- which messages an event makes due ------------------------------------------------------

    async def _moments_of(self, envelope: Envelope, seq: int) -> tuple[RunView | None, list[Moment]]:
        """The moments ``envelope`` makes due, from the run's events up to it; the run's view moves on with it."""
        run_id, folds = envelope.runid, self.folds
        last = folds.applied.get(run_id, folds.ended.get(run_id))
        if last is not None and seq <= last:
            # folded here already: it comes again (its ack was lost), or after later events (its reader died):
            # its moments come from the log up to it, and the ledger says which are told
            return observe(await self._replay(run_id, before_seq=seq), envelope)
        if run_id in folds.ended:
            return None, []  # a late event of a run already told to the end
        moments: list[Moment] = []
        if run_id not in folds:
            view = None if isinstance(envelope.data, RunStarted) else await self._replay(run_id, before_seq=seq)
            if view is None and not isinstance(envelope.data, RunStarted):
                # RunStarted is a run's first event: without it before this one, it never comes
                folds.end(run_id, seq)
                return None, []  # a run that never started (a refused start, a test's commands): nothing to tell
            view, moments = observe(view, envelope)
        else:
            async def earlier(event: Envelope) -> None:
                # events of this run that went to another instance (the consumer is shared): folded first, so a
                # moment that depends on what came before (a stage's checks in its stage_passed) is seen here too;
                # whether they were told is the ledger's to say, when they come here
                if event.source != self.bus.source:
                    folds.states[run_id] = observe(folds.states[run_id], event)[0] or folds.states[run_id]

            async def this(event: Envelope) -> None:
                nonlocal moments
                new, moments = observe(folds.states[run_id], event)
                folds.states[run_id] = new or folds.states[run_id]

            await folds.follow(envelope, seq, this, earlier=earlier)
            view = folds.states[run_id]
        if view is not None and view.outcome is not None and not view.watching:
            folds.end(run_id, seq)
        elif view is not None:
            folds.keep(run_id, view, seq)
        return view, moments

    async def _replay(self, run_id: str, before_seq: int) -> RunView | None:
        view: RunView | None = None
        for _seq, envelope in await self.folds.history(run_id, before_seq=before_seq):
            if envelope.source != self.bus.source:
                view, _ = observe(view, envelope)  # whether these were told is the ledger's to say
        if view is not None:
            self.bus.log.info("run.replayed", run_id=run_id, step=view.step, up_to_seq=before_seq - 1)
        return view

    def _deliveries(self, view: RunView | None, moment: Moment) -> list[Delivery]:
        """The deliveries ``moment`` makes due: one per route whose sink takes the message's severity."""
        if view is None:
            return []
        out = []
        for route in routes_for(view.notifications, moment.kind):
            log = self.bus.log.bind(run_id=view.run_id, kind=moment.kind, sink=route.sink, event_id=moment.event.id)

            def template_problem(name: str, problem: str, log=log) -> None:
                log.warning("notification.template_failed", template=name, problem=redact(problem))

            notice = render_moment(view.notifications, route.template, moment.kind, moment.context, moment.event,
                                   template_problem)
            if route.admits(notice.severity):
                out.append(Delivery(view.run_id, moment, route, view.notifications.sinks[route.sink], notice,
                                    DeliveryLedger.key(moment.event.id, moment.kind, route.sink)))
        return out

    def _track(self, event_id: str, deliveries: list[Delivery]) -> None:
        self.pending[event_id] = deliveries
        while len(self.pending) > EVENTS_KEPT:
            self.pending.popitem(last=False)

    # --- settling: claim in the ledger, post in a lane, record ----------------------------------

    async def _settle(self, deliveries: list[Delivery]) -> bool:
        """Start what is not started; True when every delivery has its outcome in the ledger."""
        ledger = await self._ledger()
        settled = True
        for d in deliveries:
            if d.state == "settled":
                continue
            if d.state == "posting":
                settled = False
                continue
            if d.outcome is not None:  # posted, but the ledger write or the report failed: finish, never post again
                await self._record(d, d.outcome)
                continue
            claim = await ledger.claim(d.key, self.owner)
            if claim.done is not None:
                self._log(d).info("notification.already_delivered", outcome=claim.done.get("outcome"))
                await self._report(d, claim.done)  # same id as before: the stream drops a duplicate
                d.state = "settled"
                continue
            settled = False
            if claim.revision is None:
                self._log(d).info("notification.claimed_elsewhere", by=claim.held_by)
                continue
            d.state, d.revision = "posting", claim.revision
            self.lanes.submit(lane_of(d.run_id, d.route.sink, d.notice.severity), d)
        return settled

    async def _deliver(self, d: Delivery) -> None:
        """In its lane: post, keep the claim alive meanwhile, record the outcome, report it."""
        try:
            keeping = asyncio.create_task(self._keep_claim(d))
            try:
                outcome = await self._post(d)
            finally:
                keeping.cancel()
            d.outcome = outcome
            await self._record(d, outcome)
        finally:
            if d.state == "posting":  # not settled: the event's next return claims it again (ours) and goes on
                d.state = "new"

    async def _post(self, d: Delivery) -> dict:
        config = d.config
        log = self._log(d)
        started = time.perf_counter()
        try:
            sink = sink_for(config)
            url = secret_from_env(config.webhook_url_env)
            async with httpx.AsyncClient(follow_redirects=False) as client:
                attempts = await post(client, url, sink.outbound(d.notice), RetryPolicy.of(config))
        except (MissingSecret, UnknownSink, ValueError) as exc:
            outcome = {"outcome": "failed", "attempts": 0, "reason": redact(str(exc))}
        except DeliveryFailed as exc:
            outcome = {"outcome": "failed", "attempts": exc.attempts, "reason": redact(exc.reason)}
        else:
            d.accepted = time.perf_counter()
            log.info("notification.posted", attempts=attempts, seconds=round(d.accepted - started, 3))
            return {"outcome": "sent", "attempts": attempts, "severity": d.notice.severity, "text": d.notice.text}
        log.warning("notification.failed", attempts=outcome["attempts"], reason=outcome["reason"],
                    seconds=round(time.perf_counter() - started, 3))
        return outcome  # recorded too: a redelivery must not start the retries over

    async def _record(self, d: Delivery, outcome: dict) -> None:
        await (await self._ledger()).record(d.key, outcome)
        if outcome.get("outcome") == "sent" and d.accepted is not None:
            window = time.perf_counter() - d.accepted
            self.window.observe(window)
            self._log(d).info("notification.sent", attempts=outcome["attempts"], ledger_window_ms=round(window * 1000, 3))
        self._fault_point("recorded", d.moment.kind)
        await self._report(d, outcome)
        d.state = "settled"

    async def _keep_claim(self, d: Delivery) -> None:
        """Renew the claim while the post runs, so no other instance takes a slow delivery for a dead one."""
        ledger = await self._ledger()
        try:
            while True:
                await asyncio.sleep(CLAIM_LEASE_S / 3)
                d.revision = await ledger.renew(d.key, self.owner, d.revision)
        except LostClaim as exc:
            self._log(d).warning("notification.claim_lost", reason=str(exc))
        except (nats.errors.Error, TimeoutError) as exc:  # retried at the next renewal would be too late: say so
            self._log(d).warning("notification.claim_not_renewed", error=redact(f"{type(exc).__name__}: {exc}"))

    async def _report(self, d: Delivery, outcome: dict) -> None:
        moment, route = d.moment, d.route
        base = f"{moment.event.id}/{moment.kind}/{route.sink}"
        # correlated to the notification itself: never to a command the coordinator awaits
        if outcome.get("outcome") == "sent":
            data = NotificationSent(kind=moment.kind, sink=route.sink, attempts=outcome["attempts"],
                                    event_id=moment.event.id, severity=outcome.get("severity", ""),
                                    text=redact(outcome.get("text", "")))
            await self.bus.emit(data, run_id=d.run_id, event_id=f"{base}/sent", cause=moment.event, correlationid=base)
        else:
            data = NotificationFailed(kind=moment.kind, sink=route.sink, attempts=outcome.get("attempts", 0),
                                      reason=outcome.get("reason", ""), event_id=moment.event.id)
            await self.bus.emit(data, run_id=d.run_id, event_id=f"{base}/failed", cause=moment.event, correlationid=base)
        self.deliveries.labels(route.sink, moment.kind, outcome.get("outcome", "")).inc()

    async def _ledger(self) -> DeliveryLedger:
        if self.ledger is None:
            self.ledger = await DeliveryLedger.open(self.bus.jetstream(), self.ledger_bucket,
                                                    self.bus.settings.stream_replicas)
        return self.ledger

    def _log(self, d: Delivery):
        return self.bus.log.bind(run_id=d.run_id, kind=d.moment.kind, sink=d.route.sink, event_id=d.moment.event.id)

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
    # -1: an event whose messages are still being posted is handed back (Defer) as often as it takes
    bus.consume_events(bus.subjects.all_events, "notifier-events", notifier.on_event, max_deliver=-1)
    return notifier
