"""One driver per post-deploy watch: two coordinators, one of them drives the watch under a lease, and when it
is killed the other takes the watch over and finishes it. Each check command is published once (counted on the
command subject itself, before JetStream's deduplication could hide a second publish) and each check completes
once, in order, none skipped over."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import pytest

from golive.services.coordinator.post_deploy_driver import PostDeployDriver
from golive.shared.bus import Bus
from golive.shared.commands import RunProbes, command_target
from golive.shared.event_log import read_events
from golive.shared.events import WatchCheckCompleted, WatchEnded
from golive.shared.telemetry import ServiceMetrics, configure_logging
from tests.builders import skeleton_plan
from tests.harness import REPO

pytestmark = pytest.mark.e2e


def watched(plan: dict) -> None:
    plan["post_deploy"] = {"period": "10s", "health_every": "1s", "summary_every": "4s",
                           "checks": [{"probe": "stripe_recent", "duration": "300ms",
                                       "thresholds": {"p95_ms": 400, "error_rate_pct": 1.0}}]}


async def watch_a_run(settings, process_env, tmp_path: Path, run_id: str,
                      after_check: Callable[[int], Awaitable[None]] | None = None) -> tuple[Counter, list, WatchEnded]:
    """Run a watched go-live; the check commands published (by id), the checks completed (in stream order) and the
    watch's end. ``after_check(index)`` is awaited as each check's completion is read from the stream."""
    nc = await nats.connect(settings.resolved_nats_url())
    published: Counter = Counter()

    async def on_command(msg) -> None:
        published[json.loads(msg.data)["id"]] += 1

    try:
        await nc.subscribe(settings.subjects.command(*command_target(RunProbes)), cb=on_command)
        plan = skeleton_plan(tmp_path, hold="1s", smoke="1s", edit=watched)
        run = await asyncio.create_subprocess_exec(sys.executable, "-m", "golive", "run", str(plan), "--run-id", run_id,
                                                   env=process_env, cwd=REPO, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 0, out.decode() + err.decode()
        completed, ended = [], None
        js = nc.jetstream()

        async def follow() -> WatchEnded:
            events = read_events(js, settings.subjects.events_of_run(run_id), follow=True)
            async with contextlib.aclosing(events) as feed:
                async for _seq, envelope in feed:
                    if isinstance(envelope.data, WatchCheckCompleted):
                        completed.append(envelope.data)
                        if after_check:
                            await after_check(envelope.data.index)
                    if isinstance(envelope.data, WatchEnded):
                        return envelope.data
            raise AssertionError("the event feed ended")

        ended = await asyncio.wait_for(follow(), 120)  # a watch nobody drives never ends: fail, do not hang
    finally:
        await nc.close()
    return Counter({k: n for k, n in published.items() if k.startswith(f"{run_id}/watch/")}), completed, ended


def logged(log: Path, event: str, run_id: str) -> list[dict]:
    return [entry for line in log.read_text().splitlines()
            if line.startswith("{") and (entry := json.loads(line)).get("event") == event
            and entry.get("run_id") == run_id]


def driver_of_watch(log_dir: Path, run_id: str) -> str:
    """The coordinator that last decided something for the watch (the one driving it)."""
    last = max(((entry["timestamp"], log.stem) for log in log_dir.glob("coordinator*.log")
                for entry in logged(log, "watch.decided", run_id)), default=None)
    assert last, "no coordinator decided anything for the watch"
    return last[1]


def assert_each_check_once(published: Counter, completed: list, ended: WatchEnded, run_id: str) -> None:
    assert ended.checks >= 3, ended
    # every check sent once: a second publish (another coordinator ticking the same watch) is a second check
    # as soon as it falls outside JetStream's duplicate window
    assert published == Counter({f"{run_id}/watch/check/{n}": 1 for n in range(ended.checks)}), published
    # every check completed once, in order, with the prober's answer (not a timeout: no answer was lost)
    assert [c.index for c in completed] == list(range(ended.checks)), [c.index for c in completed]
    assert [c.error for c in completed] == [""] * ended.checks


def test_two_coordinators_drive_one_watch_and_send_each_check_once(services, settings, process_env, tmp_path):
    services.start_one("coordinator", "-b")
    published, completed, ended = asyncio.run(watch_a_run(settings, process_env, tmp_path, "watch-two"))
    assert_each_check_once(published, completed, ended, "watch-two")
    deciders = {log.stem for log in (tmp_path / "logs").glob("coordinator*.log")
                if logged(log, "watch.decided", "watch-two")}
    assert len(deciders) == 1, deciders  # one driver for the whole watch


def test_the_other_coordinator_finishes_a_watch_whose_driver_was_killed(services, settings, process_env, tmp_path):
    services.start_one("coordinator", "-b")
    killed = ""

    async def kill_its_driver(index: int) -> None:
        nonlocal killed
        if index == 1:
            killed = driver_of_watch(tmp_path / "logs", "watch-killed")
            services.procs[killed].send_signal(signal.SIGKILL)

    published, completed, ended = asyncio.run(
        watch_a_run(settings, process_env, tmp_path, "watch-killed", after_check=kill_its_driver))
    assert killed, "the watch ended before its driver could be killed"
    assert_each_check_once(published, completed, ended, "watch-killed")
    survivor = ({"coordinator", "coordinator-b"} - {killed}).pop()
    # taken over once the killed one's lease expired (by the adopter, or by an answer handed back until then)
    assert logged(tmp_path / "logs" / f"{survivor}.log", "watch.taken", "watch-killed")


def test_a_watch_whose_driver_died_is_adopted_from_the_listing_without_an_event(services, settings, process_env,
                                                                                  tmp_path):
    """The adopting driver here consumes no event at all: only the listing of live watches can show it the watch."""
    adopted = []

    async def kill_and_adopt(index: int) -> None:
        if index != 0:
            return
        services.procs["coordinator"].send_signal(signal.SIGKILL)  # the only coordinator: it drives the watch
        bus = Bus(settings, "coordinator", ServiceMetrics("coordinator"), configure_logging("coordinator", "WARNING"))
        await bus.start()
        driver = PostDeployDriver(bus)  # not registered: no consumer, no event of the run reaches it
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while "watch-adopted" not in driver.leases:  # once the dead one's lease expired (4 s in tests)
                assert asyncio.get_running_loop().time() < deadline, "the watch was never adopted"
                await driver.take_over_orphans()
                await asyncio.sleep(0.5)
            adopted.append(driver.watches["watch-adopted"])
        finally:
            await driver.stop_ticking()  # hands the watch back at once: a coordinator process finishes it
            await bus.stop()
        services.start_one("coordinator", "-after")

    published, completed, ended = asyncio.run(
        watch_a_run(settings, process_env, tmp_path, "watch-adopted", after_check=kill_and_adopt))
    [state] = adopted
    assert state.watching and state.checks_done >= 1
    assert_each_check_once(published, completed, ended, "watch-adopted")
    assert logged(tmp_path / "logs" / "coordinator-after.log", "watch.taken", "watch-adopted")
