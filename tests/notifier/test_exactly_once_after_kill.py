"""Exactly once across a crash: a notifier killed -9 while the receiver holds one of its posts, later events of the
run published, a new notifier started. Every message-bearing event is delivered once, whatever reaches the new
instance first: the event whose post died with the old one, or the later ones (whose replay folds it)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from golive.shared.events import CompensationStarted, RunFinished, StepFailed
from golive.stack.service_processes import wait_until_ready
from tests.notifier.notifier_io import (
    delivered,
    hook_plan,
    publish,
    sent,
    until,
    wait_for_event,
)
from tests.notifier.run_events import RunLog

REASON = "stage1:hold failed: p95 512.00 > 400 over 300 requests"


@pytest.mark.parametrize("later_events", ["before_the_restart", "after_the_restart"])
async def test_message_in_flight_when_the_notifier_is_killed_is_delivered_once_after_restart(
    settings, webhook, notifiers, later_events
):
    log = RunLog(run_id="run-kill", plan=hook_plan(), root=settings.subject_root).start()
    started, = log.events
    failed = log.add(StepFailed(step="stage1:hold", reason=REASON))

    # the receiver keeps the rollback alert's post open: the notifier dies with it in flight
    webhook.hold_if = lambda body: body.get("notifykind") == "rollback_started"
    first = notifiers.start_one("notifier", "-a")
    await wait_until_ready(settings, ["notifier"], notifiers)
    await publish(settings, started, failed)
    assert await until(webhook, lambda: len(webhook.held()) == 1)
    first.kill()
    await asyncio.to_thread(first.wait, 10)
    webhook.hold_if = None  # the held post's sender is gone: it is never answered, never received

    later = [log.add(CompensationStarted(step="undo:stage1:shift:10", undoes="stage1:shift:10")),
             log.add(RunFinished(outcome="rolled_back", reason=REASON, duration_s=12.0))]
    if later_events == "before_the_restart":
        await publish(settings, *later)
    notifiers.start_one("notifier", "-b")
    if later_events == "after_the_restart":
        await publish(settings, *later)

    expected = {(started.id, "run_started"), (failed.id, "rollback_started"), (later[-1].id, "run_rolled_back")}
    assert await until(webhook, lambda: set(delivered(webhook)) >= expected, timeout_s=90), delivered(webhook)
    for kind in ("run_started", "rollback_started", "run_rolled_back"):  # each delivery settled and reported
        await wait_for_event(settings, log.run_id, sent(kind), timeout_s=60)
    assert delivered(webhook) == Counter(dict.fromkeys(expected, 1))
