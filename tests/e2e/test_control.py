"""Pause, continue and retry on a live run, and operator commands that cannot apply: they exit 2, say why, and
neither send a command nor record an event."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest

from golive.shared.settings import Settings
from tests.builders import skeleton_plan
from tests.harness import background_run, finish_after, run_cli, wait_for_output

pytestmark = pytest.mark.e2e


def in_process(*args: str, env: dict[str, str]):
    """`golive ARGS` in this process (no interpreter start-up): the same exit code, stdout and stderr."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from golive.cli.app import app

    result = CliRunner().invoke(app, list(args), env=env)
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def refused(*args: str, env: dict[str, str], settings: Settings) -> str:
    """Run `golive ARGS`, expect exit 2, and check it published no command to the coordinator (a core NATS
    subscriber sees every publish, also one taken off the work queue at once); returns stderr."""

    async def watch() -> tuple[object, list[str]]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            published: list[str] = []

            async def seen(msg) -> None:
                published.append(msg.subject)

            await nc.subscribe(settings.subjects.commands_of("coordinator"), cb=seen)
            await nc.flush()
            result = await asyncio.to_thread(in_process, *args, env=env)
            await nc.flush()  # the server sends our subscription what it routed before this round trip ends
            return result, published
        finally:
            await nc.close()

    result, published = asyncio.run(watch())
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert published == [], (args, published)
    return result.stderr


def wait_for_status(run_id: str, text: str, env: dict[str, str], timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = run_cli("status", run_id, env=env)
        if text in status.stdout:
            return status.stdout
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(0.3)


def test_paused_run_finishes_its_hold_then_waits_for_continue_before_the_next_shift(services, settings, process_env,
                                                                                    tmp_path):
    def long_first_hold(plan: dict) -> None:
        plan["canary"]["stages"][0]["hold"] = "15s"  # time enough to start `golive pause` on a busy machine
        plan["analysis"] = {"interval": "1s", "min_samples": 1}  # windows judged, for `golive status`

    with background_run(skeleton_plan(tmp_path, hold="1s", edit=long_first_hold), "run-pause", process_env) as run:
        wait_for_output(run, "traffic: 10%")  # stage 1's hold is in flight
        paused = run_cli("pause", "run-pause", "--reason", "checkout errors on the dashboard", env=process_env)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert "paused by" in paused.stdout and "checkout errors" in paused.stdout
        twice = refused("pause", "run-pause", "--reason", "twice", env=process_env, settings=settings)
        assert "already paused" in twice

        held = wait_for_status("run-pause", "holding before stage", process_env)
        next_step = held.split("holding before ", 1)[1].split(":", 2)[:2]  # stage2:shift, normally
        assert "paused by" in held and run.poll() is None
        [listed] = [line for line in run_cli("status", env=process_env).stdout.splitlines() if "run-pause" in line]
        assert " paused " in listed
        out, err = finish_after(run, "continue", "run-pause", "--reason", "false alarm", env=process_env)
    assert run.returncode == 0, out + err
    assert out.index("continued by") < out.index(":".join(next_step))  # the shift waited for the continue
    status = run_cli("status", "run-pause", env=process_env).stdout
    assert "windows judged: " in status and " pass, 0 fail" in status
    assert "paused by" in status and "continued by" in status  # among the last decisions, with who and why

    ended = {("pause", "run-pause", "--reason", "late"): "already ended: succeeded; nothing to pause",
             ("continue", "run-pause"): "is not paused (it is at: succeeded)",
             ("retry", "run-pause"): "does not need a human (it is: succeeded)",
             ("abort", "run-pause", "--reason", "late"): "already ended: succeeded",
             ("approve", "run-pause"): "not waiting for an approval"}
    for args, why in ended.items():
        assert why in refused(*args, env=process_env, settings=settings)


def test_retry_undoes_what_a_needs_human_run_left_once_the_traffic_service_is_back(services, settings, process_env,
                                                                                  tmp_path):
    def quick_timeouts(plan: dict) -> None:
        plan["timeouts"] = {"step": "4s"}
        plan["retries"] = {"attempts": 1}

    with background_run(skeleton_plan(tmp_path, hold="30s", edit=quick_timeouts), "run-retry", process_env) as run:
        wait_for_output(run, "traffic: 10%")
        assert "is not paused (it is at: stage1" in refused("continue", "run-retry", env=process_env, settings=settings)
        services.procs["traffic"].terminate()  # the rollback will find nobody to move traffic back
        services.procs["traffic"].wait(30)
        aborted = run_cli("abort", "run-retry", "--reason", "bad canary", env=process_env)
        out, err = run.communicate(timeout=60)
    assert aborted.returncode == 3 and run.returncode == 3, aborted.stdout + out + err
    assert "left to undo: stage1:shift:10, migrate" in out

    services.start_one("traffic")
    retried = run_cli("retry", "run-retry", "--reason", "traffic service restarted", env=process_env)

    assert retried.returncode == 1, retried.stdout + retried.stderr
    assert "compensations retried by" in retried.stdout and "run rolled_back" in retried.stdout
    weights = json.loads((settings.state_dir / "traffic-dry-run.json").read_text())
    assert weights["canary"]["weight"] == 0
    listing = run_cli("status", env=process_env)
    [line] = [line for line in listing.stdout.splitlines() if "run-retry" in line]
    assert "rolled_back" in line and "needs_human" not in line
    report = run_cli("report", "run-retry", "--out", str(tmp_path / "report"), env=process_env)
    assert report.returncode == 0, report.stderr
    assert json.loads((tmp_path / "report" / "report.json").read_text())["outcome"] == "rolled_back"

    again = refused("retry", "run-retry", env=process_env, settings=settings)
    assert "does not need a human (it is: rolled_back)" in again


def test_operator_commands_on_an_unknown_run_exit_2_and_send_nothing(nats_url, settings, tmp_path):
    from golive.shared.bus import ensure_streams

    asyncio.run(ensure_streams(settings))
    env = {"GOLIVE_NATS_URL": settings.resolved_nats_url(), "GOLIVE_SUBJECT_ROOT": settings.subject_root,
           "GOLIVE_STATE_DIR": str(settings.state_dir)}
    for args in (("approve", "run-nope"), ("abort", "run-nope", "--reason", "typo"),
                 ("pause", "run-nope", "--reason", "typo"), ("continue", "run-nope"), ("retry", "run-nope"),
                 ("status", "run-nope")):
        assert "no run run-nope" in refused(*args, env=env, settings=settings)
