"""Independent delivery: a receiver that hangs on one run's posts holds up neither another run's messages nor the
same run's rollback alert. Ordering, not timing: the receiver holds the posts until the test releases them, and the
alert must arrive while they are still held."""

from __future__ import annotations

from collections import Counter

from golive.shared.events import StepFailed
from golive.stack.service_processes import wait_until_ready
from tests.notifier.notifier_io import delivered, hook_plan, publish, until
from tests.notifier.run_events import RunLog

REASON = "stage1:hold failed: p95 512.00 > 400 over 300 requests"
HUNG = {"timeout_s": 120, "attempts": 1}  # a post gets all the time it asks for: only the receiver ends it


async def test_a_run_whose_posts_hang_does_not_hold_up_another_runs_rollback_alert(settings, webhook, notifiers):
    plan = hook_plan(**HUNG)
    a = RunLog(run_id="run-a", plan=plan, root=settings.subject_root).start().stage(1, 10).stage(2, 50).stage(3, 100)
    b = RunLog(run_id="run-b", plan=plan, root=settings.subject_root).start()
    alert = b.add(StepFailed(step="stage1:hold", reason=REASON))
    webhook.hold_if = lambda body: body.get("runid") == "run-a"  # run A's receiver hangs on every post

    notifiers.start_one("notifier")
    await wait_until_ready(settings, ["notifier"], notifiers)
    await publish(settings, *a.events)  # four posts for A: its start and each stage the coordinator judged passed
    assert await until(webhook, lambda: len(webhook.held()) >= 1)
    await publish(settings, *b.events)

    assert await until(webhook, lambda: (alert.id, "rollback_started") in delivered(webhook)), webhook.held()
    assert webhook.held() and not any(m["runid"] == "run-a" for m in webhook.received)  # A's posts still held

    webhook.hold_if = None
    webhook.release()
    a_kinds = ["run_started", "stage_passed", "stage_passed", "stage_passed"]
    assert await until(webhook, lambda: sum(1 for m in webhook.received if m["runid"] == "run-a") >= len(a_kinds))
    got = delivered(webhook)
    assert all(n == 1 for n in got.values()), got
    assert sorted(kind for event_id, kind in got if event_id.startswith("run-a/")) == a_kinds
    assert {k for k in got if k[0].startswith("run-b/")} == {(b.events[0].id, "run_started"), (alert.id, "rollback_started")}


async def test_a_rollback_alert_does_not_wait_behind_its_runs_start_message(settings, webhook, notifiers):
    log = RunLog(run_id="run-c", plan=hook_plan(**HUNG), root=settings.subject_root).start()
    started, = log.events
    alert = log.add(StepFailed(step="stage1:hold", reason=REASON))
    webhook.hold_if = lambda body: body.get("notifykind") == "run_started"

    notifiers.start_one("notifier")
    await wait_until_ready(settings, ["notifier"], notifiers)
    await publish(settings, started)
    assert await until(webhook, lambda: len(webhook.held()) == 1)
    await publish(settings, alert)

    assert await until(webhook, lambda: (alert.id, "rollback_started") in delivered(webhook)), webhook.held()
    assert [m["notifykind"] for m in webhook.held()] == ["run_started"]  # the start is still held

    webhook.hold_if = None
    webhook.release()
    assert await until(webhook, lambda: (started.id, "run_started") in delivered(webhook))
    assert delivered(webhook) == Counter({(started.id, "run_started"): 1, (alert.id, "rollback_started"): 1})
