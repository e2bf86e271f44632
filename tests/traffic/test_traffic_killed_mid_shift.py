"""The traffic service as its own process, killed (SIGKILL) in the middle of a shift against a real Envoy, then
started again: JetStream redelivers the unacknowledged command (after ack_wait) and it ends in the intended
state once: one change at the proxy, one answer, reporting the weight the first attempt found."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest

from golive.shared.commands import ShiftTraffic
from golive.shared.events import TrafficShifted
from golive.stack.service_processes import ServiceProcesses, service_env, wait_until_ready
from tests.traffic.conftest import Conversation, canary_share, envoy_canary_weight, envoy_spec

pytestmark = pytest.mark.e2e


async def test_traffic_service_killed_mid_shift_ends_in_the_intended_state_once(settings, envoy, admin_relay, tmp_path):
    env = service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_COMMAND_ACK_WAIT_S": "5",  # the redelivery comes 5 s after the kill instead of the default 30 s
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_GRACEFUL_TIMEOUT_S": "5"})
    procs = ServiceProcesses(env, tmp_path / "logs")
    spec = envoy_spec(admin_relay.url)
    shift_10 = ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=10, expected_previous_weight=0)
    shift_50 = ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=50, expected_previous_weight=10)
    try:
        first = procs.start_one("traffic", "-1")
        await wait_until_ready(settings, ["traffic"], procs)
        async with Conversation(settings, "run-kill") as talk:
            assert isinstance((await talk.ask(shift_10, "run-kill.1")).data, TrafficShifted)

            admin_relay.hold = re.compile(r"routing\.canary\.canary=50\b")
            await talk.send(shift_50, "run-kill.2")
            await asyncio.wait_for(admin_relay.held.wait(), 20)
            assert await envoy_canary_weight(envoy.admin_url) == 50  # applied, not yet answered
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
            admin_relay.hold = None
            admin_relay.release.set()

            procs.start_one("traffic", "-2")  # its durable consumer exists already: it takes the redelivery
            answer = await talk.next(timeout_s=90)  # redelivered once ack_wait (5 s here) has passed
            more = await talk.answers_within(3.0)
        share, _ = await canary_share(envoy.url, 400)
    finally:
        procs.stop()
    assert first.returncode == -signal.SIGKILL
    assert answer.correlationid == "run-kill.2" and isinstance(answer.data, TrafficShifted)
    assert (answer.data.before, answer.data.after, answer.data.verified, answer.data.changed) == (10, 50, True, True)
    assert more == []
    assert [m for m in admin_relay.modifications() if "canary=50" in m] == [admin_relay.modifications()[-1]]
    assert len(admin_relay.modifications()) == 2  # 10, then 50 once: the redelivery changed nothing
    assert 35 <= share <= 65
    assert "command.done" in (tmp_path / "logs" / "traffic-2.log").read_text()
