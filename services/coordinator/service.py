"""Coordinator service shell: keeps the runs it drives in memory, feeds them to decide(), publishes.

State is the fold of a run's events; a run this process has not seen (after a restart, or taken over
from another instance) is rebuilt by replaying its events from the stream before the new one is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from datetime import UTC, datetime

from pydantic import ValidationError

from services.coordinator.artifacts import build_artifacts, write_artifacts
from services.coordinator.metrics import RunMetrics
from services.coordinator.plan import Plan
from services.coordinator.window import describe_window, window_containing
from services.coordinator.saga import EmitEvent, RunState, SendCommand, Tick, awaited_command, decide
from shared.bus import Bus, CommandError, Work
from shared.commands import AbortRun, ApproveGate, StartRun, command_target
from shared.envelope import Envelope, new_envelope
from shared.event_log import read_events
from shared.events import AbortRequested, ApprovalGranted, RunStarted

TICK_S = 1.0


class RunDriver:
    """Drives runs: one lock, so decisions for all runs are applied one at a time and in order."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.metrics = RunMetrics(bus.metrics.registry)
        self.runs: dict[str, RunState] = {}
        self.applied: dict[str, int] = {}  # last stream sequence folded into each run's state
        self.lock = asyncio.Lock()
        self._ticker: asyncio.Task | None = None

    async def on_event(self, envelope: Envelope, seq: int) -> None:
        async with self.lock:
            run_id = envelope.runid
            state = self.runs.get(run_id)
            if state is not None and seq <= self.applied[run_id]:
                return  # a redelivery of an event this state already holds
            if state is None and not isinstance(envelope.data, RunStarted):
                state = await self._replay(run_id, before_seq=seq)
                if state is None:
                    return  # events of a run that never started (a rejected start): nothing to drive
            elif state is not None:
                # Other instances share this consumer: fold what they handled since, so we decide on the
                # whole history (their outputs were theirs to publish; ours would be the same, deduplicated).
                state = await self._catch_up(state, run_id, after_seq=self.applied[run_id], before_seq=seq)
            await self._apply(state, envelope, cause=envelope)
            self.applied[run_id] = seq

    async def _apply(self, state: RunState | None, item: Envelope | Tick, cause: Envelope | None) -> None:
        new, outputs = decide(state, item)
        self.metrics.observe(state, new, outputs, item.time if isinstance(item, Envelope) else item.now)
        for out in outputs:
            if isinstance(out, SendCommand):
                await self._send(new, out, cause)
            elif isinstance(out, EmitEvent):
                await self.bus.emit(out.data, run_id=new.run_id, event_id=out.id, cause=cause,
                                    correlationid=out.correlationid)
        if new is not None:
            self.runs[new.run_id] = new
            if new.finished and not (state is not None and state.finished):
                await self._write_artifacts(new.run_id)
            if outputs:
                self.bus.log.info("run.decided", run_id=new.run_id, position=new.position, outcome=new.outcome,
                                  compensating=new.compensating, outputs=[type(o.data).__name__ for o in outputs])

    async def _send(self, state: RunState, out: SendCommand, cause: Envelope | None) -> None:
        service, action = command_target(type(out.data))
        envelope = new_envelope(
            out.data, id=out.id, source=self.bus.source, runid=state.run_id,
            subject=self.bus.subjects.command(service, action), correlationid=out.id,
            causationid=cause.id if cause else None,
        )
        await self.bus.publish(envelope, envelope.subject or "", self.bus.subjects.command_stream)

    async def _write_artifacts(self, run_id: str) -> None:
        """Lock-in: the run's report, validation file and badges, rebuilt from its events."""
        try:
            js = self.bus.broker.connection.jetstream()
            async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id))) as feed:
                events = [envelope async for _seq, envelope in feed]
            directory = self.bus.settings.artifacts_dir / run_id
            written = await asyncio.to_thread(write_artifacts, build_artifacts(events), directory)
            self.bus.log.info("run.artifacts_written", run_id=run_id, directory=str(directory), files=len(written))
        except Exception as exc:  # artifacts must never stop the saga; `golive report RUN` can rebuild them
            self.bus.log.error("run.artifacts_failed", run_id=run_id, error=str(exc))

    async def _catch_up(self, state: RunState, run_id: str, after_seq: int, before_seq: int) -> RunState:
        js = self.bus.broker.connection.jetstream()
        subject = self.bus.subjects.events_of_run(run_id)
        async with aclosing(read_events(js, subject, from_seq=after_seq + 1, up_to_seq=before_seq - 1)) as feed:
            async for _seq, envelope in feed:
                state, _ = decide(state, envelope)
        return state

    async def _replay(self, run_id: str, before_seq: int) -> RunState | None:
        js = self.bus.broker.connection.jetstream()
        state: RunState | None = None
        async with aclosing(read_events(js, self.bus.subjects.events_of_run(run_id), up_to_seq=before_seq - 1)) as feed:
            async for _seq, envelope in feed:
                state, _ = decide(state, envelope)
        if state is not None:
            self.bus.log.info("run.replayed", run_id=run_id, position=state.position, outcome=state.outcome)
            if pending := awaited_command(state):
                await self._send(state, pending, cause=None)
        return state

    # --- the clock ------------------------------------------------------------------------------

    async def start_ticking(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def stop_ticking(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            async with self.lock:
                for state in list(self.runs.values()):
                    if not state.finished:
                        try:
                            await self._apply(state, Tick(datetime.now(UTC)), cause=None)
                        except Exception as exc:  # publishing failed: the next tick tries again
                            self.bus.log.warning("run.tick_failed", run_id=state.run_id, error=str(exc))


def register(bus: Bus) -> RunDriver:
    """Wire the coordinator onto ``bus``: start-run commands and the event feed."""
    driver = RunDriver(bus)

    async def on_start(cmd: StartRun, work: Work) -> RunStarted:
        try:
            plan = Plan.model_validate(cmd.plan)
        except ValidationError as exc:
            raise CommandError(f"invalid plan: {exc.error_count()} problem(s); run `golive plan check`", "invalid") from None
        window = plan.window.maintenance
        opened = window_containing(work.envelope.time, window.days, window.start, window.end, window.timezone) if window else None
        if window and not opened and not cmd.force_window:
            raise CommandError(
                f"outside the maintenance window ({describe_window(window.days, window.start, window.end, window.timezone)}); "
                "start it inside the window, or force it with --force-window", "invalid")
        return RunStarted(
            plan=plan.model_dump(mode="json"), plan_name=plan.name,
            deploy_id=cmd.deploy_id, previous_deploy_id=cmd.previous_deploy_id,
            window_ends_at=opened[1] if opened else None,
        )

    async def on_abort(cmd: AbortRun, work: Work) -> AbortRequested:
        return AbortRequested(reason=cmd.reason, requested_by=cmd.requested_by)

    bus.on_command(StartRun, on_start)
    bus.on_command(AbortRun, on_abort)

    async def on_approve(cmd: ApproveGate, work: Work) -> ApprovalGranted:
        return ApprovalGranted(stage=cmd.stage, approved_by=cmd.approved_by, comment=cmd.comment)

    bus.on_command(ApproveGate, on_approve)
    bus.consume_events(bus.subjects.all_events, "coordinator-events", driver.on_event)
    return driver
