"""The command line's client of the bus: start a run and watch it, operate it, read runs back, over plain NATS.

Every operator command the CLI has (run, abort, approve, pause, continue, retry, status, watch, events, report)
is one function here that connects, does its work and closes; they take Settings and an ``echo`` for the events
they print, and return what the command exits with (``EXIT_*``) or what it reads. `golive resume`
(golive/resume.py) and the demo (golive/demo/run.py) build on the same functions. A request the coordinator's
own rule refuses for the run as it stands raises ``RunNotControllable`` before anything is sent; a bus that
cannot be reached raises ``BusUnreachable`` (golive.shared.settings).
"""

from __future__ import annotations

import asyncio
import getpass
import secrets
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js.errors import NotFoundError

from golive.exit_codes import EXIT_BY_OUTCOME, EXIT_INVALID, EXIT_NEEDS_HUMAN, RunNotControllable
from golive.services.coordinator.control import operator_refusal
from golive.services.coordinator.saga import RunState, decide
from golive.shared.commands import AbortRun, ApproveGate, ContinueRun, PauseRun, RetryRun, StartRun, command_envelope
from golive.shared.envelope import Envelope, nats_headers
from golive.shared.event_log import read_events
from golive.shared.events import CommandFailed, RunFinished, RunStarted
from golive.shared.plan import Plan
from golive.shared.run_history import read_runs, read_watches
from golive.shared.run_summary import RunSummary, with_watches
from golive.shared.settings import BusUnreachable, Settings, connect_options

CLI_SOURCE = "/golive/cli"  # the operator


def operator_name(settings: Settings) -> str:
    """Who asks: the NATS user the client connects as, else the login name (recorded in the run's events)."""
    return settings.nats_user or getpass.getuser()


def new_run_id(now: datetime | None = None) -> str:
    """``run-20261123-0215-3fa9c1``: sortable by start time, unique, one NATS subject token."""
    now = now or datetime.now(UTC)
    return f"run-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


async def connect(settings: Settings) -> nats.NATS:
    """A connection to the bus the settings name (``golive up``'s stack file, or GOLIVE_NATS_URL and its user),
    or BusUnreachable saying how to start one. The caller closes it."""
    try:
        return await nats.connect(**await connect_options(settings), connect_timeout=3, max_reconnect_attempts=2,
                                  allow_reconnect=True)
    except (NoServersError, OSError, TimeoutError) as exc:
        raise BusUnreachable(
            f"cannot reach NATS at {settings.shown_nats_url()} ({type(exc).__name__}); "
            "start the stack with `golive up` or set GOLIVE_NATS_URL"
        ) from None


async def send_to_coordinator(js, settings: Settings, data, run_id: str, command_id: str) -> Envelope:
    """Publish a command to the coordinator (``command_id`` deduplicates a re-send) and return its envelope."""
    command = command_envelope(data, id=command_id, source=CLI_SOURCE, run_id=run_id, subjects=settings.subjects)
    await js.publish(command.subject, command.to_json(), stream=settings.subjects.command_stream,
                     headers=nats_headers(command), timeout=settings.publish_timeout_s)
    return command


async def start_and_watch(
    settings: Settings, plan: Plan, deploy_id: str, previous_deploy_id: str | None, run_id: str,
    echo: Callable[[Envelope], None], force_window: bool = False,
) -> int:
    """Ask the coordinator to start the run, print its events as they happen, return the exit code."""
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        last_seq = await send_start(js, settings, plan, deploy_id, previous_deploy_id, run_id, echo, force_window)
        if last_seq < 0:
            return EXIT_INVALID  # the coordinator refused to start it (echoed: why)
        async with aclosing(follow_run(js, settings, run_id, from_seq=last_seq + 1)) as feed:
            async for envelope in feed:
                echo(envelope)
                if isinstance(envelope.data, RunFinished):
                    return EXIT_BY_OUTCOME[envelope.data.outcome]
    finally:
        await nc.close()
    return EXIT_NEEDS_HUMAN


async def send_start(
    js, settings: Settings, plan: Plan, deploy_id: str, previous_deploy_id: str | None, run_id: str,
    echo: Callable[[Envelope], None], force_window: bool = False,
) -> int:
    """Send the run's start and wait until a coordinator accepts it (every event until then echoed): the stream
    sequence of the last event echoed, or -1 if the coordinator refused the start (its reason was echoed). Each
    start has an id of its own: a second start of a run id that already ran is refused, never taken for the first."""
    from golive.shared.bus import ensure_streams  # the bus's services side (faststream) loads only where streams are made
    await ensure_streams(settings)
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.start_timeout_s)
    start = await send_to_coordinator(js, settings, StartRun(
        plan=plan.model_dump(mode="json"), deploy_id=deploy_id, previous_deploy_id=previous_deploy_id,
        force_window=force_window, expires_at=expires_at), run_id, f"{run_id}.start.{secrets.token_hex(4)}")
    return await _await_acceptance(js, settings, run_id, start.id, echo)


async def follow_run(js, settings: Settings, run_id: str, from_seq: int = 1) -> AsyncGenerator[Envelope, None]:
    """The run's events from stream sequence ``from_seq`` on, as they are recorded, until the first that ends the
    run (run_finished, yielded too). A run that already ended: its events up to that end, then the iterator ends."""
    async with aclosing(read_events(js, settings.subjects.events_of_run(run_id), from_seq=from_seq,
                                    follow=True)) as feed:
        async for _seq, envelope in feed:
            yield envelope
            if isinstance(envelope.data, RunFinished):
                return


ACCEPTANCE_POLL_S = 0.25


async def _await_acceptance(js, settings: Settings, run_id: str, start_id: str,
                            echo: Callable[[Envelope], None]) -> int:
    """Wait (bounded by the start timeout) until a coordinator accepts the start: the stream sequence of its
    run_started (the answers to this start echoed), or -1 if it refused the start. No coordinator in time:
    BusUnreachable (the start expires).

    Polled with reads that end, not a followed read cut by a timeout: a cancellation can be lost on Python 3.11
    (asyncio.wait_for drops one that arrives as its future completes), and this wait must end."""
    deadline = asyncio.get_running_loop().time() + settings.start_timeout_s
    last_seq = 0
    while True:
        async with aclosing(read_events(js, settings.subjects.events_of_run(run_id), from_seq=last_seq + 1)) as feed:
            async for seq, envelope in feed:
                last_seq = seq
                if envelope.correlationid != start_id:
                    continue  # an earlier run of this run id (this start is refused: "already exists"), not this one
                echo(envelope)
                if isinstance(envelope.data, CommandFailed):
                    return -1
                if isinstance(envelope.data, RunStarted):
                    return last_seq
        if asyncio.get_running_loop().time() >= deadline:
            raise BusUnreachable(
                f"no coordinator accepted run {run_id} within {settings.start_timeout_s:g} s (is one running? "
                "`golive up`, or `golive serve coordinator`); the start expires and will not run later")
        await asyncio.sleep(ACCEPTANCE_POLL_S)


async def read_run(js, settings: Settings, run_id: str) -> tuple[RunState | None, list[Envelope]]:
    """A run as the coordinator sees it: the fold of its events through the saga's own decide()."""
    state, events, _last_seq = await _read_run(js, settings, run_id)
    return state, events


async def watch_run(js, settings: Settings, run_id: str) -> AsyncGenerator[Envelope, None]:
    """Every event of the run from its first until the first that ends it (run_finished, yielded too), its history
    read once: RunNotControllable for an unknown run, else that history, then what is recorded after it."""
    state, events, last_seq = await _read_run(js, settings, run_id)
    if state is None:
        raise await unknown_run(js, settings, run_id)
    for envelope in events:
        yield envelope
        if isinstance(envelope.data, RunFinished):
            return
    async with aclosing(follow_run(js, settings, run_id, from_seq=last_seq + 1)) as feed:
        async for envelope in feed:
            yield envelope


async def _read_run(js, settings: Settings, run_id: str) -> tuple[RunState | None, list[Envelope], int]:
    """read_run, and the stream sequence of the last event read (0: none), where a follower goes on from."""
    state: RunState | None = None
    events: list[Envelope] = []
    last_seq = 0
    try:
        async with aclosing(read_events(js, settings.subjects.events_of_run(run_id))) as feed:
            async for seq, envelope in feed:
                events.append(envelope)
                last_seq = seq
                state, _ = decide(state, envelope)
    except NotFoundError:  # no event stream at all under this subject root: no run was ever started
        return None, [], 0
    return state, events, last_seq


CONFIRM_TIMEOUT_S = 30.0  # how long pause/continue wait for the coordinator to record the request
RECENT_RUNS_SHOWN = 5
RUN_LIST_TIMEOUT_S = 1.0  # the list only helps: never a wait for it


async def unknown_run(js, settings: Settings, run_id: str) -> RunNotControllable:
    """The refusal of a run id the stream has no run of, naming the runs it has (the newest few): a typo is seen
    at once. One request (the stream's run_started subjects), whatever the stream holds."""
    subject = settings.subjects.event("*", "coordinator", RunStarted.short_name())
    try:
        async with asyncio.timeout(RUN_LIST_TIMEOUT_S):
            info = await js.stream_info(settings.subjects.event_stream, subjects_filter=subject)
    except NotFoundError:  # no event stream at all under this subject root
        return RunNotControllable(f"no run {run_id}: no run has started on this bus yet")
    except (TimeoutError, NatsError):  # a user who may not ask (or a slow server): the refusal without the list
        return RunNotControllable(f"no run {run_id} (`golive status` lists the runs)")
    # run ids sort by their start time (new_run_id); one given by hand sorts where its name puts it
    runs = sorted((name.split(".")[-3] for name in (info.state.subjects or {})), reverse=True)
    if not runs:
        return RunNotControllable(f"no run {run_id}: no run has started on this bus yet")
    more = f" and {len(runs) - RECENT_RUNS_SHOWN} more (`golive status`)" if len(runs) > RECENT_RUNS_SHOWN else ""
    return RunNotControllable(f"no run {run_id}; recent runs: {', '.join(runs[:RECENT_RUNS_SHOWN])}{more}")


async def _controllable_run(js, settings: Settings, run_id: str, data) -> tuple[RunState, int]:
    """``run_id`` as the coordinator sees it and the stream sequence of its last event, if ``data`` (an operator
    command) may apply to it: RunNotControllable for an unknown run, or with the reason the coordinator's own rule
    (services/coordinator/control.py) refuses it."""
    state, _events, last_seq = await _read_run(js, settings, run_id)
    if state is None:
        raise await unknown_run(js, settings, run_id)
    if why := operator_refusal(data, state):
        raise RunNotControllable(why)
    return state, last_seq


async def _operate(settings: Settings, run_id: str, data, action: str, echo: Callable[[Envelope], None],
                   follow_to_end: bool) -> int:
    """Send one operator command to ``run_id`` unless the coordinator's own rule refuses it for the run as it stands
    (services/coordinator/control.py: RunNotControllable, and nothing is sent; the coordinator applies the same rule
    when the command arrives). ``follow_to_end``: print the run's events until it finishes and return its exit code;
    otherwise print only the coordinator's record of the request and return 0."""
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        _state, last_seq = await _controllable_run(js, settings, run_id, data)
        command = await send_to_coordinator(js, settings, data, run_id, f"{run_id}.{action}.{secrets.token_hex(4)}")
        try:
            async with asyncio.timeout(None if follow_to_end else CONFIRM_TIMEOUT_S):
                # on from what was read: the history is not read a second time
                async with aclosing(read_events(js, settings.subjects.events_of_run(run_id), from_seq=last_seq + 1,
                                                follow=True)) as feed:
                    async for _seq, envelope in feed:
                        answers = envelope.correlationid == command.id
                        if follow_to_end or answers:
                            echo(envelope)
                        if follow_to_end and isinstance(envelope.data, RunFinished):
                            return EXIT_BY_OUTCOME[envelope.data.outcome]
                        if answers and not follow_to_end:
                            return EXIT_INVALID if isinstance(envelope.data, CommandFailed) else 0
        except TimeoutError:
            raise BusUnreachable(
                f"{action} of run {run_id} was sent but the coordinator has not recorded it in "
                f"{CONFIRM_TIMEOUT_S:g}s: is it running? `golive status {run_id}` shows whether it took effect"
            ) from None
    finally:
        await nc.close()
    return EXIT_NEEDS_HUMAN


async def abort_run(settings: Settings, run_id: str, reason: str, requested_by: str,
                    echo: Callable[[Envelope], None]) -> int:
    """Ask the coordinator to abort ``run_id``, then follow the run to its end; returns the run's exit code."""
    return await _operate(settings, run_id, AbortRun(reason=reason, requested_by=requested_by), "abort",
                          echo, follow_to_end=True)


async def pause_run(settings: Settings, run_id: str, reason: str, requested_by: str,
                    echo: Callable[[Envelope], None]) -> int:
    """Hold ``run_id`` before its next step (the step in flight goes on; failures still roll back)."""
    return await _operate(settings, run_id, PauseRun(reason=reason, requested_by=requested_by), "pause",
                          echo, follow_to_end=False)


async def continue_run(settings: Settings, run_id: str, reason: str, requested_by: str,
                       echo: Callable[[Envelope], None]) -> int:
    """Let a paused run go on: the step it held back is sent now."""
    return await _operate(settings, run_id, ContinueRun(reason=reason, requested_by=requested_by),
                          "continue", echo, follow_to_end=False)


async def retry_run(settings: Settings, run_id: str, reason: str, requested_by: str,
                    echo: Callable[[Envelope], None]) -> int:
    """Run what a needs_human run has left to undo again, then follow it to its new end; returns its exit code."""
    return await _operate(settings, run_id, RetryRun(reason=reason, requested_by=requested_by), "retry",
                          echo, follow_to_end=True)


async def approve_run(settings: Settings, run_id: str, stage: int | None, approved_by: str, comment: str) -> str:
    """Open the gate ``run_id`` waits at; returns the gate's step name. RunNotControllable if it waits at none."""
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        approve = ApproveGate(stage=stage, approved_by=approved_by, comment=comment)
        state, _last_seq = await _controllable_run(js, settings, run_id, approve)
        await send_to_coordinator(js, settings, approve, run_id, f"{run_id}.approve.{state.position}")
        return state.steps[state.position].name
    finally:
        await nc.close()


async def rebuild_artifacts(settings: Settings, run_id: str, directory: Path) -> list[Path]:
    """The run's lock-in artifacts, rebuilt from the event stream into ``directory``."""
    from golive.services.coordinator.artifacts import build_artifacts, write_artifacts  # the report's modules: only here

    nc = await connect(settings)
    try:
        js = nc.jetstream()
        _state, events = await read_run(js, settings, run_id)
        if not events:
            raise await unknown_run(js, settings, run_id)
    finally:
        await nc.close()
    return write_artifacts(build_artifacts(events), directory)


async def weekly_artifacts(settings: Settings, since: datetime, until: datetime, directory: Path) -> list[Path]:
    """The weekly performance report of the runs that started in ``[since, until)``, from the run history (one
    summary per run, shared/run_history.py; never the event stream)."""
    from golive.services.coordinator.weekly import weekly_report, write_weekly

    nc = await connect(settings)
    try:
        js, root = nc.jetstream(), settings.subjects.root
        runs = with_watches(await read_runs(js, root), await read_watches(js, root))
    finally:
        await nc.close()
    return write_weekly(weekly_report(runs, since, until), directory)


async def watch_states(settings: Settings, run_id: str | None) -> list:
    """The post-deploy watch of one run, folded from its events; or every watch's record from the run history
    (shared/run_history.py: one record per watch, never the event stream)."""
    from golive.services.coordinator.post_deploy import WatchState
    from golive.services.coordinator.post_deploy import decide as decide_watch

    nc = await connect(settings)
    try:
        if not run_id:
            return await read_watches(nc.jetstream(), settings.subjects.root)
        watch: WatchState | None = None
        async with aclosing(read_events(nc.jetstream(), settings.subjects.events_of_run(run_id))) as feed:
            async for _seq, envelope in feed:
                watch, _ = decide_watch(watch, envelope)
    finally:
        await nc.close()
    return [watch] if watch is not None and watch.started_at is not None else []


async def run_statuses(settings: Settings, run_id: str) -> list[tuple[RunState, list[Envelope]]]:
    """One run's state and events (its own subject only); RunNotControllable naming the recent runs if there is
    no such run."""
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        state, events = await read_run(js, settings, run_id)
        if state is None:
            raise await unknown_run(js, settings, run_id)
        return [(state, events)]
    finally:
        await nc.close()


async def run_summaries(settings: Settings) -> list[RunSummary]:
    """Every run's summary, in start order, from the run history (shared/run_history.py; never the event stream)."""
    nc = await connect(settings)
    try:
        return await read_runs(nc.jetstream(), settings.subjects.root)
    finally:
        await nc.close()


async def show_events(settings: Settings, run_id: str | None, follow: bool, echo: Callable[[Envelope], None]) -> int:
    """Print the events of one run (or of all runs), optionally following new ones."""
    from golive.shared.bus import ensure_streams
    nc = await connect(settings)
    try:
        await ensure_streams(settings)
        subjects = settings.subjects
        subject = subjects.events_of_run(run_id) if run_id else subjects.all_events
        count = 0
        async with aclosing(read_events(nc.jetstream(), subject, follow=follow)) as feed:
            async for _seq, envelope in feed:
                echo(envelope)
                count += 1
        return 0 if count or follow else 1
    finally:
        await nc.close()
