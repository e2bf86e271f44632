"""A go-live through a real Envoy, end to end: the five services as processes, `golive run` as a user runs it,
the plan's envoy provider naming the admin URL by environment variable (as `golive up` sets it). Someone
changes the weights by hand during stage 1: stage 2's shift is refused with traffic_drift, the saga fails the
step and its compensation sends all traffic back to the previous deployment."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import nats
import pytest

from golive.shared.envelope import parse_envelope
from golive.shared.events import CompensationStarted, PhaseStarted, RunFinished, TrafficDrift, TrafficRolledBack, TrafficShifted
from golive.shared.subjects import SERVICES
from golive.stack.service_processes import ENVOY_ADMIN_ENV, ServiceProcesses, wait_until_ready
from tests.builders import skeleton_plan
from tests.harness import REPO
from tests.traffic.conftest import canary_share, set_by_hand

pytestmark = pytest.mark.e2e


def envoy_plan(tmp_path) -> str:
    def through_envoy(plan: dict) -> None:
        plan["traffic"] = {"provider": {"type": "envoy", "admin_url_env": ENVOY_ADMIN_ENV}}

    return str(skeleton_plan(tmp_path, hold="2s", smoke="1s", edit=through_envoy))


def test_weights_changed_by_hand_mid_run_are_refused_and_the_run_rolls_back(settings, process_env, envoy, tmp_path):
    env = {**process_env, ENVOY_ADMIN_ENV: envoy.admin_url}
    procs = ServiceProcesses(env, tmp_path / "logs").start()

    async def scenario() -> tuple[int, list, float]:
        nc = await nats.connect(settings.resolved_nats_url())
        run = None
        try:
            feed = await nc.jetstream().subscribe(settings.subjects.events_of_run("run-envoy"), ordered_consumer=True)
            run = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "golive", "run", envoy_plan(tmp_path), "--deploy-id", "dpl_new",
                "--previous-deploy-id", "dpl_old", "--run-id", "run-envoy", env=env, cwd=REPO,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            events = []
            while not any(isinstance(e.data, RunFinished) for e in events):
                event = parse_envelope((await feed.next_msg(timeout=60)).data)
                events.append(event)
                if isinstance(event.data, PhaseStarted) and event.data.step == "stage1:hold":
                    await set_by_hand(envoy.admin_url, 30)  # someone at a console, during stage 1's hold
            code = await asyncio.wait_for(run.wait(), 30)
            share, _ = await canary_share(envoy.url, 200)
            return code, events, share
        finally:
            if run is not None and run.returncode is None:
                run.kill()
            await nc.close()

    try:
        asyncio.run(wait_until_ready(settings, SERVICES, procs))
        code, events, share = asyncio.run(scenario())
    finally:
        procs.stop()
    data = [e.data for e in events]
    shifted = [d for d in data if isinstance(d, TrafficShifted)]
    drift = [d for d in data if isinstance(d, TrafficDrift)]
    assert [(s.before, s.after) for s in shifted] == [(0, 10)]
    assert [(d.expected_weight, d.observed_weight, d.requested_weight) for d in drift] == [(10, 30, 50)]
    assert [d.undoes for d in data if isinstance(d, CompensationStarted)] == ["stage1:shift:10", "migrate"]
    assert [d.verified_weight for d in data if isinstance(d, TrafficRolledBack)] == [0]
    finished = [d for d in data if isinstance(d, RunFinished)][0]
    assert finished.outcome == "rolled_back" and "traffic changed by hand" in finished.reason
    assert code == 1
    assert share == 0.0  # every request on the previous deployment
