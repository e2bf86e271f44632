"""Coordinator service shell: keeps the runs it drives in memory, feeds them to decide(), publishes.

State is the fold of a run's events (shared/fold.py); a run this process has not seen (after a restart, or taken
over from another instance) is rebuilt by replaying its events from the stream before the new one is applied.

One driver per run: a coordinator drives a run only while it holds the run's lease (lease_keeper.py). An event of
a run another live coordinator drives is handed back (Defer) so that one gets it; a run whose holder went
silent is taken over once its lease expires; a holder whose renewal fails drops the run at once. When a run ends,
its reports are written (reports.py); the clock (shared/ticking.py) ticks the runs, renews leases, adopts orphans.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import ValidationError

from golive.services.coordinator.active_runs import ActiveRuns
from golive.services.coordinator.control import operator_refusal
from golive.services.coordinator.history import RunHistory
from golive.services.coordinator.lease_keeper import DEFER_S, LeaseKeeper
from golive.services.coordinator.metrics import RunMetrics
from golive.services.coordinator.post_deploy_driver import PostDeployDriver, register_watch
from golive.services.coordinator.reports import RunReports
from golive.services.coordinator.saga import EmitEvent, RunState, SendCommand, StopProbes, Tick, awaited_command, decide
from golive.services.coordinator.takeover import fold, handled_through, is_over
from golive.services.coordinator.window import start_refusal, start_window
from golive.shared import tracing
from golive.shared.bus import Bus, CommandError, Defer, UnknownRun, Work
from golive.shared.commands import AbortRun, ApproveGate, ContinueRun, PauseRun, RetryRun, StartRun, StopProbe
from golive.shared.envelope import Envelope, new_envelope
from golive.shared.events import (
    AbortRequested,
    ApprovalGranted,
    ContinueRequested,
    PauseRequested,
    RetryRequested,
    RunStarted,
)
from golive.shared.fold import RunFolds
from golive.shared.plan import plan_from_dict
from golive.shared.plan_versions import PlanVersionError
from golive.shared.run_summary import RunSummary, summarise, summary_of
from golive.shared.secrets import redact
from golive.shared.ticking import Ticking

TICK_S = 1.0
FINISHED_REMEMBERED = 10_000  # ids of ended runs kept to drop their late events cheaply (~1 MB at most)


class RunDriver:
    """Drives the runs whose lease it holds: one lock, so decisions are applied one at a time and in order.

    ``only_run``: drive that run and no other (`golive resume RUN`)."""

    def __init__(self, bus: Bus, only_run: str | None = None) -> None:
        self.bus = bus
        self.only_run = only_run
        self.metrics = RunMetrics(bus.metrics.registry)
        # the runs this process drives, until they end; those that ended, by id, so their late events (notifications)
        # are dropped without a replay
        self.folds: RunFolds[RunState] = RunFolds(bus.jetstream, bus.subjects, FINISHED_REMEMBERED)
        self.metrics.driving.set_function(lambda: len(self.folds.states))
        self.leases = LeaseKeeper(bus, on_lost=self._let_go, lost_action=(
            "stopped driving the run: another coordinator drives it (or will, from its events)"))
        self.history = RunHistory.opened_once(bus)
        # each driven run's summary (shared/run_summary.py), and what a listing showed of it when last written
        self.summaries: dict[str, RunSummary] = {}
        self.listed: dict[str, tuple[object, ...]] = {}
        self.reports = RunReports(bus, self.folds, self.history)
        self.clock = Ticking(bus.log)
        self.lock = asyncio.Lock()
        self.active_runs = ActiveRuns.opened_once(bus)
        self.watch: PostDeployDriver | None = None  # the post-deploy watch, ticking alongside (register)

    def _let_go(self, run_id: str) -> None:
        """Stop folding a run another coordinator drives now: its state, its summary (that one writes it) and its
        metrics (that one exports them)."""
        if (state := self.folds.states.get(run_id)) is not None:
            self.metrics.forget(state)
        self.folds.forget(run_id)
        self.summaries.pop(run_id, None)
        self.listed.pop(run_id, None)

    @property
    def runs(self) -> dict[str, RunState]:
        """The runs this process drives now, by id."""
        return self.folds.states

    @property
    def finished(self) -> dict[str, int]:
        """Runs known to have ended (the latest ones), by id."""
        return self.folds.ended

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        """Fold one event of the stream into its run. Defer: another coordinator drives that run."""
        run_id = envelope.runid
        if self.only_run and run_id != self.only_run:
            return
        async with self.lock:
            if run_id in self.folds.ended:
                if not isinstance(envelope.data, RetryRequested):
                    return  # reports after the end (notifications): nothing left to decide, unless `golive retry`
                self.folds.reopen(run_id)  # replayed from its events below
            if not await self.leases.drives(run_id, lambda: self._take(run_id)):
                return
            # events another instance got from the shared consumer and handed back (Defer) may come after this
            # one: folded first, in stream order, so we decide on the whole history (nobody else applied them: we
            # hold the lease, so they are applied with their outputs)
            await self.folds.follow(envelope, seq, self._apply_event)
            self._forget_if_finished(run_id)

    async def _apply_event(self, envelope: Envelope) -> None:
        await self._apply(self.folds.states[envelope.runid], envelope, cause=envelope)

    async def _take(self, run_id: str) -> RunState | None:
        """Start driving a run this process does not hold: its history, its lease, then what nobody did yet.

        The history is folded silently up to the last event a coordinator already handled (the cause of its
        last decision); the events after it are applied with their outputs (a brand-new run: all of them).
        An event handed back while another coordinator drove the run may be long stale: it is only a
        trigger here, never applied out of order."""
        if await self.leases.held_by_other(run_id):
            raise Defer(DEFER_S)
        history = await self.folds.history(run_id)
        events = [envelope for _seq, envelope in history]
        if not any(isinstance(envelope.data, RunStarted) for envelope in events):
            return None  # never started (a rejected start): nothing to drive
        if is_over(events):
            self.folds.end(run_id, history[-1][0])
            return fold(None, events)
        # not over, even when the fold of every event says so: an answer no coordinator handled yet (its
        # coordinator died after sending the last command) decides the end, and its outputs are still to publish
        await self._acquire(run_id)
        try:
            done = handled_through(events, self.bus.source)
            state = fold(None, events[:done + 1])
            if (summary := summary_of(events[:done + 1])) is not None:
                self.summaries[run_id] = summary
            if state is not None:
                self.bus.log.info("run.replayed", run_id=run_id, position=state.position, outcome=state.outcome)
            before = awaited_command(state)
            for envelope in events[done + 1:]:
                await self._apply(state, envelope, cause=envelope)
                state = self.folds.states[run_id]
            assert state is not None  # RunStarted is in the history: folding it made the run
            self.folds.keep(run_id, state, history[-1][0])
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
            self.leases.let_go(run_id)
            self.folds.forget(run_id)
            raise

    async def take_over(self, run_id: str) -> RunState | None:
        """Drive ``run_id`` from where its events stand now (`golive resume`). Defer while another
        coordinator drives it."""
        async with self.lock:
            if run_id in self.leases:
                return self.folds.states.get(run_id)
            return await self._take(run_id)

    async def _acquire(self, run_id: str) -> None:
        await self.leases.acquire(run_id)
        await (await self.active_runs()).add(run_id)

    def _forget_if_finished(self, run_id: str) -> None:
        """A run that ended leaves memory (its artifacts are written, its lease released): only its id is kept."""
        state = self.folds.states.get(run_id)
        if state is not None and state.finished:
            self.metrics.forget(state)
            self.summaries.pop(run_id, None)
            self.listed.pop(run_id, None)
            self.folds.end(run_id, self.folds.applied.get(run_id, 0))

    async def release_all(self) -> None:
        """Hand back every run this process drives (stopping before they end): others take them at once."""
        for run_id in list(self.leases.held):
            await self.leases.release(run_id)

    async def _apply(self, state: RunState | None, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        self.metrics.observe(state, new, outputs, item.time if isinstance(item, Envelope) else item.now,
                             item.data if isinstance(item, Envelope) else None)
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
        ends = new is not None and new.finished and not (state is not None and state.finished)
        written_from: list[Envelope] | None = None
        if ends and new is not None:  # the lock-in files first: whoever sees run_finished finds them (reports.py)
            events = [envelope for envelope, stream in batch if stream == self.bus.subjects.event_stream]
            written_from = await self.reports.write_lock_in(new.run_id, events)
        await self.bus.publish_all(batch)
        if new is not None and isinstance(item, Envelope):
            await self._summarise(item)
        if new is not None:
            self.folds.states[new.run_id] = new
            if ends:
                tracing.end_run(new.run_id, new.started_at, new.outcome, new.retry_round)  # the run's root span
                await self.reports.run_ended(new.run_id, written_from)
                await self.leases.release(new.run_id)
                await (await self.active_runs()).remove(new.run_id)
            if outputs:
                self.bus.log.info("run.decided", run_id=new.run_id, position=new.position, outcome=new.outcome,
                                  compensating=new.compensating,
                                  outputs=[type(getattr(o, "data", o)).__name__ for o in outputs])

    async def _summarise(self, envelope: Envelope) -> None:
        """Fold the event into the run's summary; write it when what a listing shows of it changed (its end is
        written from the whole history, with its report: reports.py)."""
        run_id = envelope.runid
        summary = summarise(self.summaries.get(run_id), envelope)
        if summary is None:
            return
        self.summaries[run_id] = summary
        if self.listed.get(run_id) == summary.listed():
            return
        try:
            await (await self.history()).put_run(summary)
            self.listed[run_id] = summary.listed()
        except Exception as exc:  # only a stale line in `golive status` until the next write
            self.bus.log.warning("history.write_failed", run_id=run_id, error=redact(str(exc)))

    async def _rebuild_history(self) -> None:
        """Summaries of the runs recorded without one (before the run history existed): once, at start."""
        await (await self.history()).rebuild_missing(self.bus.log)

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
        return self.bus.command_envelope(out.data, run_id=state.run_id, command_id=out.id, cause=cause)

    async def _send(self, state: RunState, out: SendCommand, cause: Envelope | None) -> None:
        envelope = self._command_envelope(state, out, cause)
        await self.bus.publish(envelope, envelope.subject or "", self.bus.subjects.command_stream)

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self.clock.every(TICK_S, self._tick, "run.tick_failed")
        self.clock.every(TICK_S / 2, self.leases.renew_all, "lease.renew_failed")
        self.clock.every(TICK_S, self.adopt_orphans, "run.adopt_failed")  # the bus is away: the next round tries
        if not self.only_run:  # `golive resume RUN` drives one run: the service's coordinators rebuild the history
            self.clock.once(self._rebuild_history, "history.rebuild_failed", retry_s=30 * TICK_S)
        if self.watch:
            await self.watch.start_ticking()

    async def stop_ticking(self) -> None:
        if self.watch:
            await self.watch.stop_ticking()
        await self.reports.stop()  # charts being drawn finish (bounded): a stopping coordinator still leaves its reports
        await self.clock.stop()

    async def adopt_orphans(self) -> None:
        """Take over every started, unended run whose lease expired: its coordinator died, and the run may send no
        event for a long time (a hold), so waiting for one would leave its timeouts and ticks undriven."""
        active = await self.active_runs()
        for run_id in await active.list():
            if run_id in self.leases or (self.only_run and run_id != self.only_run):
                continue
            if run_id in self.folds.ended:
                await active.remove(run_id)  # its driver died between run_finished and saying so here
                continue
            if await self.leases.adopt(run_id, self.lock, lambda: self._take(run_id)):
                self.bus.log.info("run.adopted", run_id=run_id,
                                  reason="its coordinator's lease expired; taken over without waiting for an event")
            elif run_id in self.folds.ended:
                await active.remove(run_id)

    async def _tick(self) -> None:
        async with self.lock:
            for state in list(self.folds.states.values()):
                if not state.finished and state.run_id in self.leases:
                    try:
                        await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                    except Exception as exc:  # publishing failed: the next tick tries again
                        self.bus.log.warning("run.tick_failed", run_id=state.run_id, error=str(exc))
                    self._forget_if_finished(state.run_id)


def register(bus: Bus) -> RunDriver:
    """Wire the coordinator onto ``bus``: start-run and operator commands, and the event feed."""
    driver = RunDriver(bus)

    async def history(work: Work) -> list[Envelope]:
        return [envelope for _seq, envelope in await driver.folds.history(work.envelope.runid)]

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
        if why := start_refusal(plan.window.maintenance, work.envelope.time, cmd.force_window):
            raise CommandError(why, "invalid")
        opened = start_window(plan.window.maintenance, work.envelope.time)
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
