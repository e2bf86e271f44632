"""The coordinator's Prometheus metrics: runs by outcome, where each run stands, rollbacks by cause, and
the time from a breach to the end of its rollback."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.coordinator.saga import EmitEvent, Output, RunState, SendCommand
from shared.commands import PromoteTraffic, ShiftTraffic
from shared.events import StepFailed


class RunMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("golive_runs_total", "Runs ended, by outcome", ["outcome"], registry=registry)
        self.position = Gauge("golive_run_step", "Index of the step a run is at", ["run_id", "plan"], registry=registry)
        self.weight = Gauge("golive_run_canary_weight", "Canary weight last asked for", ["run_id", "plan"], registry=registry)
        self.rollbacks = Counter("golive_rollbacks_total", "Rollbacks started, by cause", ["cause"], registry=registry)
        self.driving = Gauge("golive_coordinator_runs_in_memory", "Runs this coordinator drives now (ended runs "
                             "leave memory)", registry=registry)
        self.breach_to_rollback = Histogram(
            "golive_breach_to_rollback_seconds", "From the failure a run rolls back for to the end of its rollback",
            registry=registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 600),
        )

    def observe(self, before: RunState | None, after: RunState | None, outputs: list[Output], at: datetime) -> None:
        """Update from one decision (called by the shell after decide())."""
        if after is None:
            return
        labels = (after.run_id, after.plan.name)
        self.position.labels(*labels).set(after.position)
        for out in outputs:
            if isinstance(out, EmitEvent) and isinstance(out.data, StepFailed):
                self.rollbacks.labels(out.data.cause).inc()
            elif isinstance(out, SendCommand) and isinstance(out.data, ShiftTraffic):
                self.weight.labels(*labels).set(out.data.weight)
            elif isinstance(out, SendCommand) and isinstance(out.data, PromoteTraffic):
                self.weight.labels(*labels).set(100)
        if after.finished and not (before is not None and before.finished):
            self.runs.labels(after.outcome).inc()
            if after.outcome == "rolled_back":
                self.weight.labels(*labels).set(0)
                # failed_at is the failing input's time: for analysis and guard failures the window's event,
                # so this measures from the breach as measured, not from when the hold would have ended
                if after.failed_at is not None:
                    self.breach_to_rollback.observe((at - after.failed_at).total_seconds())

    def forget(self, state: RunState) -> None:
        """A run ended: its per-run series go (a long-lived coordinator must not grow one series per run ever)."""
        for gauge in (self.position, self.weight):
            try:
                gauge.remove(state.run_id, state.plan.name)
            except KeyError:
                pass  # never set (a run that ended before any shift)
