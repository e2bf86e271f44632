"""The notifier as its own OS process on the real broker, fed run events the way the coordinator publishes
them, posting to a real local webhook receiver."""

from __future__ import annotations

import asyncio
import signal

import nats

from golive.services.notifier.service import KILL_AT_ENV
from golive.shared.events import RunFinished, StepFailed
from golive.stack.service_processes import wait_until_ready
from tests.notifier.notifier_io import publish, sent, wait_for_event
from tests.notifier.run_events import RunLog

# the notifier_env and notifiers fixtures are tests/notifier/conftest.py's


async def acked_up_to(settings, seq: int, timeout_s: float = 30.0) -> None:
    """Wait until the notifier's durable consumer has acked every event up to stream sequence ``seq``."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        async def floor() -> None:
            while (await nc.jetstream().consumer_info(settings.subjects.event_stream, "notifier-events")
                   ).ack_floor.stream_seq < seq:
                await asyncio.sleep(0.1)
        await asyncio.wait_for(floor(), timeout_s)
    finally:
        await nc.close()


def kinds_received(webhook) -> list[str]:
    return [t.split(" ", 1)[0] for t in webhook.texts()]


async def test_notifier_killed_after_posting_and_before_acking_does_not_post_again_after_restart(
    settings, webhook, notifiers, notifier_env
):
    log = RunLog(root=settings.subject_root).start()
    started, = log.events
    failed = log.add(StepFailed(step="stage1:hold",
                                reason="stage1:hold failed: p95 512.00 > 400 over 300 requests"))

    # instance A dies by SIGKILL right after the rollback message is posted and recorded, before its ack
    notifiers.env = {**notifier_env, KILL_AT_ENV: "recorded:rollback_started"}
    first = notifiers.start_one("notifier", "-a")
    await wait_until_ready(settings, ["notifier"], None)
    await publish(settings, started)
    await acked_up_to(settings, 1)  # A told the start and acked it: B will not get it again
    await publish(settings, failed)
    assert await asyncio.to_thread(first.wait, 60) == -signal.SIGKILL
    assert len(webhook.texts()) == 2 and "Rollback Triggered" in webhook.texts()[1]

    # instance B gets the unacked event again: the ledger says it was delivered, so it reports and acks
    notifiers.env = notifier_env
    notifiers.start_one("notifier", "-b")
    reported = await wait_for_event(settings, log.run_id, sent("rollback_started"), timeout_s=60)
    assert reported.data.attempts == 1

    # B never saw the run start: it rebuilds the run from the stream and carries on with its context
    finished = log.add(RunFinished(outcome="rolled_back", reason=failed.data.reason, duration_s=12.0))
    await publish(settings, finished)
    await wait_for_event(settings, log.run_id, sent("run_rolled_back"))

    texts = webhook.texts()
    assert len(texts) == 3, texts
    assert sum("Rollback Triggered" in t for t in texts) == 1
    assert "rolled back to dpl_old" in texts[2]
    b_log = (notifiers.log_dir / "notifier-b.log").read_text()
    assert "notification.already_delivered" in b_log and "run.replayed" in b_log


async def test_receiver_failing_twice_gets_the_message_once_and_the_attempts_are_reported(
    settings, webhook, notifiers
):
    webhook.fail_next = [500, 503]
    log = RunLog(run_id="run-flaky", root=settings.subject_root).start()
    notifiers.start_one("notifier")
    await wait_until_ready(settings, ["notifier"], notifiers)

    await publish(settings, *log.events)
    reported = await wait_for_event(settings, log.run_id, sent("run_started"))

    assert reported.data.attempts == 3 and reported.data.sink == "slack"
    assert reported.correlationid != log.events[0].correlationid  # never mistaken for an answer by the saga
    assert [a.status for a in webhook.attempts] == [500, 503, 200]
    assert webhook.texts() == ["🚀 Starting skeleton Production Deployment"]
