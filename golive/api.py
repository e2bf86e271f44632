"""golive's Python client, for pipelines that drive go-lives from their own code: start a run, watch its events
to its end, approve its gates, abort it, read where it stands.

    from golive.api import Client

    client = Client()                      # the bus `golive up` started, or GOLIVE_NATS_URL and its user
    run_id = await client.start("plans/checkout.yaml", deploy_id="v42", previous_deploy_id="v41")
    async for event in client.watch(run_id):
        print(event.time, event.type)      # every event of the run, the last one its run_finished
    summary = await client.status(run_id)  # summary.outcome: succeeded, rolled_back or needs_human

It is the command line's own client (golive/client.py: the same requests, the same checks before anything is
sent), as objects instead of printed lines; docs/client.md has the whole of it. What each call can raise:
``PlanError`` (an invalid plan, every problem listed), ``StartRefused`` (the run did not start, and why),
``RunNotControllable`` (an unknown run, or one the request cannot apply to, and why; nothing was sent),
``BusUnreachable`` (no NATS, or no coordinator accepted the start in time).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

from golive import client as bus
from golive.exit_codes import EXIT_BY_OUTCOME, RunNotControllable, StartRefused
from golive.shared.envelope import Envelope
from golive.shared.events import CommandFailed
from golive.shared.plan import Plan, PlanError
from golive.shared.run_summary import RunSummary, summary_of
from golive.shared.settings import BusUnreachable, Settings

__all__ = ["BusUnreachable", "Client", "Envelope", "PlanError", "RunNotControllable", "RunSummary", "StartRefused",
           "exit_code"]


def exit_code(outcome: str) -> int:
    """The exit code `golive run` gives a run's outcome: 0 succeeded, 1 rolled_back, 3 needs_human (or running)."""
    return EXIT_BY_OUTCOME.get(outcome, EXIT_BY_OUTCOME["needs_human"])


class Client:
    """A client of one golive bus. Every call connects, does its work and closes: a Client holds no connection
    and may be shared by tasks.

    ``settings``: where the bus is and its subject root (default: ``Settings()``, read from GOLIVE_* variables and
    `golive up`'s stack file, as the command line does). ``operator``: who asks, recorded in the run's events
    (default: the NATS user, else the login name)."""

    def __init__(self, settings: Settings | None = None, operator: str | None = None) -> None:
        self.settings = settings or Settings()
        self.operator = operator or bus.operator_name(self.settings)

    async def start(self, plan: Plan | str | Path, *, deploy_id: str = "canary", previous_deploy_id: str | None = "stable",
                    run_id: str | None = None, force_window: bool = False) -> str:
        """Start a go-live of ``plan`` (a plan file, checked as `golive plan check` does, or a Plan) and return its
        run id once a coordinator has accepted it. The run goes on in the coordinator whatever this process does.

        Raises PlanError, StartRefused (outside the plan's maintenance window unless ``force_window``, or refused
        by the coordinator: an ended run's id, a target another run holds, ...), BusUnreachable."""
        from golive.services.coordinator.window import start_refusal
        from golive.shared.ids import check_id

        if not isinstance(plan, Plan):
            from golive.plans.check import check_plan
            plan = check_plan(Path(plan))
        run_id = run_id or bus.new_run_id()
        for value, what in ((run_id, "run id"), (deploy_id, "deployment id"), (previous_deploy_id, "deployment id")):
            if value is not None:
                check_id(value, what)  # InvalidId (a ValueError) before anything is sent
        if why := start_refusal(plan.window.maintenance, datetime.now(UTC), force_window):
            raise StartRefused(f"run {run_id} not started: {why}")
        seen: list[Envelope] = []
        nc = await bus.connect(self.settings)
        try:
            accepted = await bus.send_start(nc.jetstream(), self.settings, plan, deploy_id, previous_deploy_id, run_id,
                                            seen.append, force_window)
        finally:
            await nc.close()
        if accepted < 0:
            why = next((e.data.reason for e in reversed(seen) if isinstance(e.data, CommandFailed)), "refused")
            raise StartRefused(f"run {run_id} not started: {why}")
        return run_id

    async def watch(self, run_id: str) -> AsyncGenerator[Envelope, None]:
        """Every event of the run, from its first, as the coordinator and the services record them; the iterator
        ends after the event that ends the run (``run_finished``: ``event.data.outcome``). For a run that already
        ended, its history up to that end. Leaving the loop early stops watching, never the run.

        Each event is a CloudEvents envelope (shared/envelope.py): ``type``, ``time``, ``source``, ``runid``,
        ``data`` (the event's pydantic model, shared/events.py). RunNotControllable for an unknown run."""
        nc = await bus.connect(self.settings)
        try:
            async with aclosing(bus.watch_run(nc.jetstream(), self.settings, run_id)) as feed:
                async for envelope in feed:
                    yield envelope
        finally:
            await nc.close()

    async def wait(self, run_id: str) -> RunSummary:
        """Wait until the run ends; its summary (``exit_code(summary.outcome)`` is what `golive run` exits with)."""
        async with aclosing(self.watch(run_id)) as events:
            async for _ in events:
                pass
        return await self.status(run_id)

    async def approve(self, run_id: str, stage: int | None = None, comment: str = "") -> str:
        """Open the gate the run waits at (``stage``: the stage you mean, refused if it waits at another); returns
        the gate's step name. RunNotControllable if the run waits at no gate (nothing is sent)."""
        return await bus.approve_run(self.settings, run_id, stage, self.operator, comment)

    async def abort(self, run_id: str, reason: str) -> RunSummary:
        """Abort the run now (its compensations start at once), follow it to its end and return its summary
        (outcome rolled_back, or needs_human if an undo failed). RunNotControllable if it already ended."""
        await bus.abort_run(self.settings, run_id, reason, self.operator, lambda _event: None)
        return await self.status(run_id)

    async def status(self, run_id: str) -> RunSummary:
        """Where the run stands: state (running, waiting, paused, compensating, succeeded, rolled_back,
        needs_human), phase and step, why, duration, the worst p95 per probe. `golive status RUN --json` prints
        the same. RunNotControllable for an unknown run (naming the recent ones)."""
        [(_state, events)] = await bus.run_statuses(self.settings, run_id)
        summary = summary_of(events)
        if summary is None:  # a start the coordinator refused: events, but no run
            raise RunNotControllable(f"run {run_id} never started")
        return summary

    async def runs(self) -> list[RunSummary]:
        """Every run's summary, in start order, from the run history (as `golive status --json` prints them)."""
        return await bus.run_summaries(self.settings)
