"""Coordinator service shell: keeps the runs it drives in memory, feeds them to decide(), publishes.

State is the fold of a run's events; a run this process has not seen (after a restart, or taken over
from another instance) is rebuilt by replaying its events from the stream before the new one is applied.

One driver per run: a coordinator drives a run only while it holds the run's lease (lease.py). An event of
a run another live coordinator drives is handed back (Defer) so that one gets it; a run whose holder went
silent is taken over once its lease expires; a holder whose renewal fails drops the run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from contextlib import aclosing
from datetime import UTC, datetime

from pydantic import ValidationError

from services.coordinator.active_runs import ActiveRuns
from services.coordinator.artifacts import build_artifacts, run_directory, write_artifacts, write_report_pages
from services.coordinator.control import operator_refusal
from services.coordinator.lease import Lease, LeaseHeld, LeaseLost, Leases, held_by_other, is_expired, renewal_due
from services.coordinator.metrics import RunMetrics
from services.coordinator.plan import plan_from_dict
from services.coordinator.post_deploy_driver import PostDeployDriver, register_watch
from services.coordinator.saga import EmitEvent, RunState, SendCommand, StopProbes, Tick, awaited_command, decide
from services.coordinator.window import describe_window, window_containing
from shared.bus import Bus, CommandError, Defer, UnknownRun, Work
from shared.commands import (
    AbortRun,
    ApproveGate,
    ContinueRun,
    PauseRun,
    RetryRun,
    StartRun,
    StopProbe,
    command_target,
)
from shared.envelope import Envelope, new_envelope
from shared.event_log import read_events
from shared.events import (
    AbortRequested,
    ApprovalGranted,
    ContinueRequested,
    PauseRequested,
    RetryRequested,
    RunFinished,
    RunStarted,
)
from shared.plan_versions import PlanVersionError
from shared.secrets import redact

TICK_S = 1.0
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
FINISHED_REMEMBERED = 10_000  # ids of ended runs kept to drop their late events cheaply (~1 MB at most)
DEFER_S = 0.5  # an event of a run another coordinator drives comes back this soon (maybe to that one)


class RunDriver:
    """Drives the runs whose lease it holds: one lock, so decisions are applied one at a time and in order.

    ``only_run``: drive that run and no other (`golive resume RUN`)."""

    def __init__(self, bus: Bus, only_run: str | None = None) -> None:
        self.bus = bus
        self.only_run = only_run
        self.metrics = RunMetrics(bus.metrics.registry)
        self.runs: dict[str, RunState] = {}  # the runs this process drives, until they end
        self.applied: dict[str, int] = {}  # last stream sequence folded into each run's state
        # runs that ended, by id (outcome), so their late events (notifications) are dropped without a replay;
        # bounded: a coordinator that ran for months must not keep every run it ever drove
        self.finished: OrderedDict[str, str] = OrderedDict()
        self.metrics.driving.set_function(lambda: len(self.runs))
        self.held: dict[str, Lease] = {}  # the leases of the runs this process drives
        self._leases: Leases | None = None
        self._active: ActiveRuns | None = None
        self.lock = asyncio.Lock()
        # Lease writes have their own lock and task: a slow decision (artifacts, a chart) must not hold up
        # renewals, and one lease is never renewed twice at once (the second compare-and-set would fail).
        self._lease_lock = asyncio.Lock()
        self._renewer: asyncio.Task | None = None
        self._ticker: asyncio.Task | None = None
        self._adopter: asyncio.Task | None = None
        self.watch: PostDeployDriver | None = None  # the post-deploy watch, ticking alongside (register)
        self._drawer: ProcessPoolExecutor | None = None  # draws charts (artifacts), started on first use
        self._drawing: set[asyncio.Task] = set()

    async def leases(self) -> Leases:
        if self._leases is None:
            self._leases = await Leases.open(self.bus.broker.connection.jetstream(), self.bus.subjects.root,
                                             self.bus.settings.lease_ttl_s, replicas=self.bus.settings.stream_replicas)
        return self._leases

    async def active_runs(self) -> ActiveRuns:
        if self._active is None:
            self._active = await ActiveRuns.open(self.bus.broker.connection.jetstream(), self.bus.subjects.root,
                                                 self.bus.settings.stream_replicas)
        return self._active

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        """Fold one event of the stream into its run. Defer: another coordinator drives that run."""
        run_id = envelope.runid
        if self.only_run and run_id != self.only_run:
            return
        async with self.lock:
            if run_id in self.finished:
                if not isinstance(envelope.data, RetryRequested):
                    return  # reports after the end (notifications): nothing left to decide, unless `golive retry`
                del self.finished[run_id]  # reopened: replayed from its events below
            state = self.runs.get(run_id)
            if run_id in self.held and not await self._still_held(run_id):
                raise Defer(DEFER_S)
            if run_id not in self.held:
                state = await self._take(run_id)
                if run_id not in self.held:
                    return
            if seq <= self.applied[run_id]:
                return  # a redelivery of an event this state already holds
            # Events another instance got from the shared consumer and handed back (Defer) may come after
            # this one: fold them first, in stream order, so we decide on the whole history.
            state = await self._catch_up(state, run_id, after_seq=self.applied[run_id], before_seq=seq)
            await self._apply(state, envelope, cause=envelope)
            self.applied[run_id] = seq
            self._forget_if_finished(run_id)

    async def _take(self, run_id: str) -> RunState | None:
        """Start driving a run this process does not hold: its history, its lease, then what nobody did yet.

        The history is folded silently up to the last event a coordinator already handled (the cause of its
        last decision); the events after it are applied with their outputs (a brand-new run: all of them).
        An event handed back while another coordinator drove the run may be long stale: it is only a
        trigger here, never applied out of order."""
        leases = await self.leases()
        if held_by_other(await leases.holder(run_id), leases.owner, datetime.now(UTC), leases.ttl_s):
            raise Defer(DEFER_S)
        history = await self._history(run_id)
        if not any(isinstance(envelope.data, RunStarted) for _seq, envelope in history):
            return None  # never started (a rejected start): nothing to drive
        if is_over([envelope for _seq, envelope in history]):
            final = fold(None, [envelope for _seq, envelope in history])
            self._remember_finished(run_id, final.outcome if final and final.outcome else "ended")
            return final
        # not over, even when the fold of every event says so: an answer no coordinator handled yet (its
        # coordinator died after sending the last command) decides the end, and its outputs are still to publish
        await self._acquire(run_id)
        try:
            done = handled_through([envelope for _seq, envelope in history], self.bus.source)
            state = fold(None, [envelope for _seq, envelope in history[:done + 1]])
            if state is not None:
                self.bus.log.info("run.replayed", run_id=run_id, position=state.position, outcome=state.outcome)
            before = awaited_command(state)
            for seq, envelope in history[done + 1:]:
                await self._apply(state, envelope, cause=envelope)
                state = self.runs[run_id]
            self.runs[run_id], self.applied[run_id] = state, history[-1][0]
            self._forget_if_finished(run_id)
            # A fold replays inputs, not our publishes: a coordinator killed between deciding and publishing
            # leaves a run that awaits a command nobody may have sent. Send it again (same id: deduplicated by
            # JetStream, and services are idempotent beyond its window).
            after = awaited_command(state)
            if before is not None and after is not None and before.id == after.id:
                await self._send(state, after, cause=None)
            return state
        except BaseException:
            # half taken (a publish failed: the bus is away, a cluster elects a leader): let go of the run here, so
            # the next delivery of one of its events takes it again from its history, instead of finding it held
            # with no state (the lease stays ours until then: taking it again is a renewal)
            self.held.pop(run_id, None)
            self.runs.pop(run_id, None)
            self.applied.pop(run_id, None)
            raise

    async def take_over(self, run_id: str) -> RunState | None:
        """Drive ``run_id`` from where its events stand now (`golive resume`). Defer while another
        coordinator drives it."""
        async with self.lock:
            if run_id in self.held:
                return self.runs.get(run_id)
            return await self._take(run_id)

    async def _acquire(self, run_id: str) -> None:
        leases = await self.leases()
        async with self._lease_lock:
            try:
                lease = await leases.acquire(run_id)
            except (LeaseHeld, LeaseLost):
                raise Defer(DEFER_S) from None
            self.held[run_id] = lease
        self.bus.log.info("lease.acquired", run_id=run_id, owner=lease.owner, ttl_s=leases.ttl_s)
        await (await self.active_runs()).add(run_id)

    async def _still_held(self, run_id: str) -> bool:
        """Our lease is live, or renewed now; otherwise the run is dropped (someone else drives it)."""
        leases = await self.leases()
        async with self._lease_lock:
            lease, now = self.held.get(run_id), datetime.now(UTC)
            if lease is None:
                return False
            if not is_expired(lease, now, leases.ttl_s) and not renewal_due(lease, now, leases.ttl_s):
                return True
            try:
                self.held[run_id] = await leases.renew(lease, now)
                return True
            except LeaseLost as exc:
                self._drop(run_id, str(exc))
                return False

    def _forget_if_finished(self, run_id: str) -> None:
        """A run that ended leaves memory (its artifacts are written, its lease released): only its id is kept."""
        state = self.runs.get(run_id)
        if state is not None and state.finished:
            self.runs.pop(run_id, None)
            self.applied.pop(run_id, None)
            self.metrics.forget(state)
            self._remember_finished(run_id, state.outcome or "ended")

    def _remember_finished(self, run_id: str, outcome: str) -> None:
        self.finished[run_id] = outcome
        self.finished.move_to_end(run_id)
        while len(self.finished) > FINISHED_REMEMBERED:
            self.finished.popitem(last=False)

    def _drop(self, run_id: str, why: str) -> None:
        self.held.pop(run_id, None)
        self.runs.pop(run_id, None)
        self.applied.pop(run_id, None)
        self.bus.log.error("lease.lost", run_id=run_id, reason=why,
                           action="stopped driving the run: another coordinator drives it (or will, from its events)")

    async def _release(self, run_id: str) -> None:
        async with self._lease_lock:
            if (lease := self.held.pop(run_id, None)) is not None:
                await (await self.leases()).release(lease)
                self.bus.log.info("lease.released", run_id=run_id)

    async def release_all(self) -> None:
        """Hand back every run this process drives (stopping before they end): others take them at once."""
        for run_id in list(self.held):
            await self._release(run_id)

    async def _apply(self, state: RunState | None, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        self.metrics.observe(state, new, outputs, item.time if isinstance(item, Envelope) else item.now)
        # a decision's events and commands go out together, in order, acknowledged in one round trip: a
        # breach's StepFailed, CompensationStarted and rollback command reach the stream a few ms sooner
        batch: list[tuple[Envelope, str]] = []
        for out in outputs:
            if isinstance(out, SendCommand):
                batch.append((self._command_envelope(new, out, cause), self.bus.subjects.command_stream))
            elif isinstance(out, EmitEvent):
                batch.append((self.bus.event_envelope(out.data, run_id=new.run_id, event_id=out.id, cause=cause,
                                                      correlationid=out.correlationid), self.bus.subjects.event_stream))
            elif isinstance(out, StopProbes):
                await self._stop_probes(new, out)  # core NATS, no ack: best effort, never holds the batch up
        await self.bus.publish_all(batch)
        if new is not None:
            self.runs[new.run_id] = new
            if new.finished and not (state is not None and state.finished):
                await self._write_artifacts(new.run_id)
                await self._release(new.run_id)
                await (await self.active_runs()).remove(new.run_id)
            if outputs:
                self.bus.log.info("run.decided", run_id=new.run_id, position=new.position, outcome=new.outcome,
                                  compensating=new.compensating,
                                  outputs=[type(getattr(o, "data", o)).__name__ for o in outputs])

    async def _stop_probes(self, state: RunState, out: StopProbes) -> None:
        """Tell the prober running ``out.command_id`` to stop (core NATS: only the live instance running it
        cares). Best effort: a missed stop only means the probe runs out its hold, and the rollback goes on."""
        stop = StopProbe(command_id=out.command_id, reason=redact(out.reason))
        envelope = new_envelope(stop, id=f"{out.command_id}/stop", source=self.bus.source, runid=state.run_id)
        try:
            await self.bus.publish_core(envelope, self.bus.subjects.stop_probes(state.run_id))
        except Exception as exc:
            self.bus.log.warning("run.stop_probes_failed", run_id=state.run_id, command_id=out.command_id,
                                 error=redact(str(exc)))

    def _command_envelope(self, state: RunState, out: SendCommand, cause: Envelope | None) -> Envelope:
        service, action = command_target(type(out.data))
        return new_envelope(
            out.data, id=out.id, source=self.bus.source, runid=state.run_id,
            subject=self.bus.subjects.command(service, action), correlationid=out.id,
            causationid=cause.id if cause else None,
        )

    async def _send(self, state: RunState, out: SendCommand, cause: Envelope | None) -> None:
        envelope = self._command_envelope(state, out, cause)
        await self.bus.publish(envelope, envelope.subject or "", self.bus.subjects.command_stream)

    async def _write_artifacts(self, run_id: str) -> None:
        """Lock-in: the run's report, validation file and badges, rebuilt from its events."""
        try:
            js = self.bus.broker.connection.jetstream()
            async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id))) as feed:
                events = [envelope async for _seq, envelope in feed]
            directory = run_directory(self.bus.settings.artifacts_dir, run_id)  # never outside artifacts/
            # the files readers look for on run_finished first (quick); the chart and report.html next, drawn
            # in another process and not awaited: matplotlib would hold the GIL, and so every run's decisions
            written = await asyncio.to_thread(lambda: write_artifacts(build_artifacts(events, chart=False), directory))
            self.bus.log.info("run.artifacts_written", run_id=run_id, directory=str(directory), files=len(written))
            pages = asyncio.create_task(self._draw_report_pages(run_id, events, directory))
            self._drawing.add(pages)
            pages.add_done_callback(self._drawing.discard)
        except Exception as exc:  # artifacts must never stop the saga; `golive report RUN` can rebuild them
            self.bus.log.error("run.artifacts_failed", run_id=run_id, error=str(exc))

    async def _draw_report_pages(self, run_id: str, events: list[Envelope], directory) -> None:
        try:
            if self._drawer is None:
                # spawn, not fork: this process runs threads and an event loop that a fork would copy mid-flight
                self._drawer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=die_with_parent, initargs=(os.getpid(),))
            written = await asyncio.get_running_loop().run_in_executor(
                self._drawer, write_report_pages, [e.to_json() for e in events], str(directory))
            self.bus.log.info("run.report_drawn", run_id=run_id, directory=str(directory), files=len(written))
        except Exception as exc:  # the other files are written; `golive report RUN` draws these again
            self.bus.log.error("run.report_drawing_failed", run_id=run_id, error=redact(str(exc)))

    async def _catch_up(self, state: RunState, run_id: str, after_seq: int, before_seq: int) -> RunState:
        js = self.bus.broker.connection.jetstream()
        subject = self.bus.subjects.events_of_run(run_id)
        async with aclosing(read_events(js, subject, from_seq=after_seq + 1, up_to_seq=before_seq - 1)) as feed:
            async for seq, envelope in feed:
                # nobody else applied these (we hold the lease): apply them with their outputs
                await self._apply(state, envelope, cause=envelope)
                state, self.applied[run_id] = self.runs[run_id], seq
        return state

    async def _history(self, run_id: str) -> list[tuple[int, Envelope]]:
        js = self.bus.broker.connection.jetstream()
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id))) as feed:
            return [item async for item in feed]

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())
        self._renewer = asyncio.create_task(self._renew_forever())
        self._adopter = asyncio.create_task(self._adopt_forever())
        if self.watch:
            await self.watch.start_ticking()

    async def stop_ticking(self) -> None:
        if self.watch:
            await self.watch.stop_ticking()
        if self._drawing:  # charts being drawn finish (bounded): a stopping coordinator still leaves its reports
            await asyncio.wait(self._drawing, timeout=10)
        if self._drawer is not None:
            self._drawer.shutdown(wait=False, cancel_futures=True)
        for task in (self._ticker, self._renewer, self._adopter):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S / 2)
            for run_id in list(self.held):
                try:
                    await self._still_held(run_id)
                except Exception as exc:  # the bus is away: the lease may still be ours; try again soon
                    self.bus.log.warning("lease.renew_failed", run_id=run_id, error=str(exc))

    async def _adopt_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.adopt_orphans()
            except Exception as exc:  # the bus is away: the next round tries again
                self.bus.log.warning("run.adopt_failed", error=redact(str(exc)))

    async def adopt_orphans(self) -> None:
        """Take over every started, unended run whose lease expired: its coordinator died, and the run may send no
        event for a long time (a hold), so waiting for one would leave its timeouts and ticks undriven."""
        leases, active = await self.leases(), await self.active_runs()
        for run_id in await active.list():
            if run_id in self.held or (self.only_run and run_id != self.only_run):
                continue
            if run_id in self.finished:
                await active.remove(run_id)  # its driver died between run_finished and saying so here
                continue
            holder = await leases.holder(run_id)
            if holder is not None and not is_expired(holder, datetime.now(UTC), leases.ttl_s):
                continue
            async with self.lock:
                if run_id in self.held:
                    continue
                try:
                    await self._take(run_id)
                except Defer:
                    continue
            if run_id in self.held:
                self.bus.log.info("run.adopted", run_id=run_id,
                                  reason="its coordinator's lease expired; taken over without waiting for an event")
            elif run_id in self.finished:
                await active.remove(run_id)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            async with self.lock:
                for state in list(self.runs.values()):
                    if not state.finished and state.run_id in self.held:
                        try:
                            await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                        except Exception as exc:  # publishing failed: the next tick tries again
                            self.bus.log.warning("run.tick_failed", run_id=state.run_id, error=str(exc))
                        self._forget_if_finished(state.run_id)


def die_with_parent(parent_pid: int) -> None:
    """In the chart worker: end when the coordinator ends, even by kill -9 (no orphaned workers, each holding
    matplotlib's memory, and with them multiprocessing's resource tracker, which waits for its last user)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the coordinator died before the line above took effect
        os._exit(0)


def is_over(history: list[Envelope]) -> bool:
    """A run is over only when its run_finished is in the history, after any `golive retry` that reopened it: the
    fold of its events can reach an outcome whose run_finished (and final message, and artifacts) nobody sent."""
    last_finish = max((i for i, e in enumerate(history) if isinstance(e.data, RunFinished)), default=-1)
    last_retry = max((i for i, e in enumerate(history) if isinstance(e.data, RetryRequested)), default=-1)
    return last_finish > last_retry


def fold(state: RunState | None, events: list[Envelope]) -> RunState | None:
    """The run after ``events``, decided without publishing anything."""
    for envelope in events:
        state, _ = decide(state, envelope)
    return state


def handled_through(history: list[Envelope], coordinator_source: str) -> int:
    """Index of the last event of ``history`` a coordinator already handled (-1: none).

    A coordinator's decision is an event of its own whose cause is an event of the run (or the clock: no
    cause); what its command handlers record (run started, abort, approval) is caused by a command instead.
    Decisions are published while their cause is handled, in stream order: the cause of the last decision
    was handled, and everything before it. A decision of the clock was handled only up to the event before it.
    """
    position = {envelope.id: i for i, envelope in enumerate(history)}
    for k in range(len(history) - 1, -1, -1):
        envelope = history[k]
        if envelope.source != coordinator_source:
            continue
        if envelope.causationid is None:
            return k - 1
        if envelope.causationid in position:
            return position[envelope.causationid]
    return -1


def register(bus: Bus) -> RunDriver:
    """Wire the coordinator onto ``bus``: start-run commands and the event feed."""
    driver = RunDriver(bus)

    async def history(work: Work) -> list[Envelope]:
        return [envelope for _seq, envelope in await driver._history(work.envelope.runid)]

    async def on_start(cmd: StartRun, work: Work) -> RunStarted | None:
        run_id = work.envelope.runid
        started = next((e for e in await history(work) if isinstance(e.data, RunStarted)), None)
        if started is not None:  # a run id starts one run: a replayed or repeated start changes nothing
            if started.correlationid == work.envelope.id:
                return None  # this very start, redelivered: it was answered already
            raise CommandError(f"run {run_id} already exists (started {started.time:%Y-%m-%d %H:%M:%S %Z}); "
                               "a run id starts one run: start a new run with a new id", "invalid")
        if cmd.expires_at is not None and datetime.now(UTC) > cmd.expires_at:
            raise CommandError(f"start of run {run_id} expired at {cmd.expires_at:%Y-%m-%d %H:%M:%S %Z} before a "
                               "coordinator took it (the CLI gave up waiting); start it again", "invalid")
        try:
            plan = plan_from_dict(cmd.plan)
        except PlanVersionError as exc:
            raise CommandError(f"invalid plan: {exc}", "invalid") from None
        except ValidationError as exc:
            raise CommandError(f"invalid plan: {exc.error_count()} problem(s); run `golive plan check`", "invalid") from None
        window = plan.window.maintenance
        opened = window_containing(work.envelope.time, window.days, window.start, window.end, window.timezone) if window else None
        if window and not opened and not cmd.force_window:
            raise CommandError(
                f"outside the maintenance window ({describe_window(window.days, window.start, window.end, window.timezone)}); "
                "start it inside the window, or force it with --force-window", "invalid")
        return RunStarted(
            # the version travels typed beside the plan, never inside it: one place says which format the dict is in
            plan=plan.model_dump(mode="json", exclude={"version"}), plan_version=plan.version, plan_name=plan.name,
            deploy_id=cmd.deploy_id, previous_deploy_id=cmd.previous_deploy_id,
            window_ends_at=opened[1] if opened else None, takes_traffic_target=True,
        )

    async def applies(cmd, work: Work) -> None:
        """Refuse an operator command that cannot apply to its run now (control.py): UnknownRun or CommandError."""
        state = fold(None, await history(work))
        action = type(cmd).TYPE.split(".")[3]
        if state is None:
            raise UnknownRun(f"{action} refused: no run {work.envelope.runid} (see `golive status`)")
        if why := operator_refusal(cmd, state):
            raise CommandError(f"{action} refused: {why}", "invalid")

    async def on_abort(cmd: AbortRun, work: Work) -> AbortRequested:
        await applies(cmd, work)
        return AbortRequested(reason=cmd.reason, requested_by=cmd.requested_by)

    bus.on_command(StartRun, on_start)
    bus.on_command(AbortRun, on_abort)

    async def on_approve(cmd: ApproveGate, work: Work) -> ApprovalGranted:
        await applies(cmd, work)
        return ApprovalGranted(stage=cmd.stage, approved_by=cmd.approved_by, comment=cmd.comment)

    bus.on_command(ApproveGate, on_approve)

    # operator controls: the command is recorded as an event; folding it through decide() is what acts
    async def on_pause(cmd: PauseRun, work: Work) -> PauseRequested:
        await applies(cmd, work)
        return PauseRequested(reason=cmd.reason, requested_by=cmd.requested_by)

    async def on_continue(cmd: ContinueRun, work: Work) -> ContinueRequested:
        await applies(cmd, work)
        return ContinueRequested(requested_by=cmd.requested_by, reason=cmd.reason)

    async def on_retry(cmd: RetryRun, work: Work) -> RetryRequested:
        await applies(cmd, work)
        return RetryRequested(requested_by=cmd.requested_by, reason=cmd.reason)

    bus.on_command(PauseRun, on_pause)
    bus.on_command(ContinueRun, on_continue)
    bus.on_command(RetryRun, on_retry)
    # max_deliver -1: an event of a run another coordinator drives is handed back (Defer) as often as needed
    bus.consume_events(bus.subjects.all_events, "coordinator-events", driver.on_event, max_deliver=-1)
    # the runbook's "next 7 days" after a run succeeds: its own consumer and clock (post_deploy_driver.py)
    driver.watch = register_watch(bus)
    return driver
