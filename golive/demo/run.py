"""`golive demo`: the runbook, run in front of you on this machine, in under three minutes.

The embedded stack (golive/stack/up.py: NATS, PostgreSQL seeded with 100,000 rows per runbook table and a
streaming replica, the demo app's stable and canary deployments behind Envoy, a local Slack receiver, the five
services), then golive/plans/supabase-golive.yaml with time compressed (golive/plans/rehearsal.py; default 120x: the
60-minute canary in 30 s). The demo plays the people in the runbook: it confirms the backup gate (a person
runs `golive approve` in production) and, with ``bad_canary``, breaks the canary app when stage
``from_stage``'s traffic shift starts, so the automatic rollback shows. Every Slack message is printed as
it arrives. The exit code is the run's.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from golive.client import approve_run, new_run_id, start_and_watch
from golive.demo.app import set_mode
from golive.exit_codes import EXIT_UNREACHABLE
from golive.plans.rehearsal import DEMO_TIME_SCALE, compress
from golive.shared.envelope import Envelope
from golive.shared.events import PhaseStarted, ProbeWindow, WindowJudged
from golive.shared.plan import Plan
from golive.shared.settings import Settings
from golive.stack.webhook_sink import slack_line

BAD_CANARY = {
    "latency": "every answer 600 ms late",
    "errors": "every second answer a 500",
    "health": "/api/health answers 503",
}
FINAL_MESSAGES = ("SUCCESS", "rolled back", "go-live failed", "needs a human")  # the notifier's last word on a run
SLACK_WAIT_S = 15.0


@dataclass
class DemoOptions:
    plan: Plan
    state_dir: Path
    bad_canary: str | None = None
    from_stage: int = 1
    time_scale: float = DEMO_TIME_SCALE
    deploy_id: str = "canary"
    previous_deploy_id: str = "stable"


@dataclass
class _Slack:
    """What the local Slack receiver got, for the demo to wait until the run's last message is in."""

    received: list[dict] = field(default_factory=list)
    final: threading.Event = field(default_factory=threading.Event)

    def take(self, body: dict, echo: Callable[[str], None]) -> None:
        self.received.append(body)
        echo(format_slack(body))
        if any(word in body.get("text", "") for word in FINAL_MESSAGES):
            self.final.set()


def format_slack(body: dict) -> str:
    """One Slack message as one line, as Slack shows it: its text, then each field as `Title: value`."""
    return slack_line(body)


def quiet_lines(line: Callable[[Envelope], None]) -> Callable[[Envelope], None]:
    """``line`` without the events a demo's reader does not need one by one: every window's numbers (they are in
    the event stream, `golive events --run`; the live view shows the last ones) and the windows that passed."""

    def echo(envelope: Envelope) -> None:
        data = envelope.data
        if not isinstance(data, ProbeWindow) and not (isinstance(data, WindowJudged) and data.verdict == "pass"):
            line(envelope)

    return echo


def run_demo(options: DemoOptions, settings: Settings, echo_line: Callable[[str], None],
             echo_event: Callable[[Envelope], None]) -> tuple[int, str | None]:
    """Start the stack, run the compressed plan, stop the stack: (exit code, run id) (None if it never started)."""
    from golive.stack.up import run_stack

    stages = len(options.plan.canary.stages)
    if not 1 <= options.from_stage <= stages:
        raise ValueError(f"--from-stage {options.from_stage}: the plan has stages 1 to {stages}")
    if options.bad_canary is not None and options.bad_canary not in BAD_CANARY:
        raise ValueError(f"--bad-canary {options.bad_canary}: one of {', '.join(BAD_CANARY)}")
    plan = compress(options.plan, options.time_scale)
    # a fresh stack every time: the last demo's indexes (kept on rollback) and rows must not change this one
    state_dir = options.state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    stop, ready = threading.Event(), threading.Event()
    stack: dict = {}
    failure: list[BaseException] = []
    slack = _Slack()

    def on_ready(info: dict) -> None:
        stack.update(info)
        ready.set()

    def serve_stack() -> None:
        try:
            run_stack(state_dir, echo_line, stop, on_ready=on_ready, on_slack=lambda body: slack.take(body, echo_line))
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=serve_stack, name="stack")
    thread.start()
    try:
        ready.wait()
        if failure:
            raise RuntimeError(f"the stack did not start: {failure[0]}") from failure[0]
        run_id = new_run_id()
        holds = " / ".join(f"{s.weight}% {s.hold:g} s" for s in plan.canary.stages)
        echo_line(f"run {run_id}: plan {options.plan.name} at {options.time_scale:g}x (stages {holds}); "
                  f"deployment {options.deploy_id}, previous {options.previous_deploy_id}"
                  + (f"; the canary breaks at stage {options.from_stage}: {BAD_CANARY[options.bad_canary]}"
                     if options.bad_canary else ""))
        echo_line("the maintenance window (Sun 02:00-04:00 UTC) is forced open for the demo")
        run_settings = settings.model_copy(update={"nats_url": stack["nats_url"], "state_dir": state_dir})
        code = asyncio.run(_drive(options, plan, run_settings, run_id, stack, echo_line, echo_event))
        if not slack.final.wait(SLACK_WAIT_S):
            echo_line(f"(the notifier's last message did not arrive within {SLACK_WAIT_S:g} s)")
        return code, run_id
    finally:
        stop.set()
        thread.join()


async def _drive(options: DemoOptions, plan: Plan, settings: Settings, run_id: str, stack: dict,
                 echo_line: Callable[[str], None], echo_event: Callable[[Envelope], None]) -> int:
    """Start the run and watch it, playing the operator: approve gates, break the canary on cue."""

    def on_phase(phase: PhaseStarted) -> None:
        if options.bad_canary and phase.where.kind == "shift" and phase.where.stage == options.from_stage:
            set_mode(stack["apps"]["canary"], options.bad_canary)
            echo_line(f"demo: the canary app now misbehaves ({options.bad_canary}: {BAD_CANARY[options.bad_canary]})")

    try:
        return await operate_run(settings, plan, run_id, options.deploy_id, options.previous_deploy_id, echo_event,
                                 on_phase, echo_line)
    except OSError:
        return EXIT_UNREACHABLE


async def operate_run(settings: Settings, plan: Plan, run_id: str, deploy_id: str, previous_deploy_id: str | None,
                      echo_event: Callable[[Envelope], None], on_phase: Callable[[PhaseStarted], None],
                      echo_line: Callable[[str], None] = lambda line: None) -> int:
    """Start ``plan`` (window forced open) and watch it to its end, playing the operator: every gate is approved
    as it is reached; ``on_phase`` sees each step as it starts (to break something on cue). The run's exit code."""
    tasks: set[asyncio.Task] = set()

    def on_event(envelope: Envelope) -> None:
        echo_event(envelope)
        data = envelope.data
        if not isinstance(data, PhaseStarted):
            return
        if data.where.kind == "gate":
            echo_line(f"demo: `golive approve {run_id}` ({data.step}): a person does this in production")
            task = asyncio.get_running_loop().create_task(
                approve_run(settings, run_id, None, "golive demo", "approved by the demo"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        on_phase(data)

    try:
        return await start_and_watch(settings, plan, deploy_id, previous_deploy_id, run_id, on_event, force_window=True)
    finally:
        for task in tasks:
            task.cancel()
