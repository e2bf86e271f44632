"""The coordinator's Prometheus metrics: runs by outcome, where runs stand, rollbacks by cause, the judged numbers of
the per-window analysis, and the time from a breach to the end of its rollback.

Every label is bounded: plan, stage, probe, guard gauge, verdict, outcome, cause; never a run id or a deployment
id, so the series do not grow with the number of runs (a long-lived coordinator drives thousands). The gauges
say where the runs of a plan stand now and go when the last run of that plan this coordinator drives ends; the
counters and the histogram add up across runs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from golive.services.coordinator.saga import EmitEvent, Output, RunState, SendCommand
from golive.shared.commands import PromoteTraffic, ShiftTraffic
from golive.shared.envelope import Message
from golive.shared.events import ProbeWindow, StageJudged, StepFailed, WindowJudged
from golive.shared.judge import GAUGES

PLAN_STAGE_PROBE = ["plan", "stage", "probe"]


class RunMetrics:
    """The coordinator's series, updated from each decision of the saga (``observe``) and trimmed when a run ends
    (``forget``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("golive_runs_total", "Runs ended, by outcome", ["outcome"], registry=registry)
        self.position = Gauge("golive_run_step", "Index of the step the plan's latest decided run is at", ["plan"],
                              registry=registry)
        self.weight = Gauge("golive_run_canary_weight", "Canary weight the plan's run last asked for", ["plan"],
                            registry=registry)
        self.rollbacks = Counter("golive_rollbacks_total", "Rollbacks started, by cause", ["cause"], registry=registry)
        self.driving = Gauge("golive_coordinator_runs_in_memory", "Runs this coordinator drives now (ended runs "
                             "leave memory)", registry=registry)
        self.breach_to_rollback = Histogram(
            "golive_breach_to_rollback_seconds", "From the failure a run rolls back for to the end of its rollback",
            registry=registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 600),
        )
        # the judged numbers (services/coordinator/analysis.py): what the per-window analysis saw and decided
        self.check_p95 = Gauge("golive_check_p95_ms", "p95 latency of a check's last judged window (ms)",
                               PLAN_STAGE_PROBE, registry=registry)
        self.check_error_rate = Gauge("golive_check_error_rate_percent",
                                      "Error rate of a check's last judged window (%)", PLAN_STAGE_PROBE,
                                      registry=registry)
        self.guard_value = Gauge("golive_guard_value", "A guard gauge's worst value in its last judged window "
                                 "(replica_lag_s, wal_lag_bytes, connection_use_pct, long_transactions)",
                                 ["plan", "stage", "gauge"], registry=registry)
        self.windows = Counter("golive_windows_judged_total", "Probe windows of stage holds judged, by verdict "
                               "(probe: a check, or the guard's probe)", [*PLAN_STAGE_PROBE, "verdict"],
                               registry=registry)
        self.stages = Counter("golive_stages_judged_total", "Canary stages ended, by verdict",
                              ["plan", "stage", "verdict"], registry=registry)
        # the gauges' series set for each plan, and the runs of that plan being driven: the series go with the last
        self._series: defaultdict[str, set[tuple[Gauge, tuple[str, ...]]]] = defaultdict(set)
        self._runs: defaultdict[str, set[str]] = defaultdict(set)

    def observe(self, before: RunState | None, after: RunState | None, outputs: list[Output], at: datetime,
                received: Message | None = None) -> None:
        """Update from one decision (called by the shell after decide()); ``received``: the event decided on."""
        if after is None:
            return
        plan = after.plan.name
        if not after.finished:
            self._runs[plan].add(after.run_id)
        self._set(self.position, (plan,), after.position)
        for out in outputs:
            if isinstance(out, EmitEvent):
                self._count(plan, out.data, received)
            elif isinstance(out, SendCommand) and isinstance(out.data, ShiftTraffic):
                self._set(self.weight, (plan,), out.data.weight)
            elif isinstance(out, SendCommand) and isinstance(out.data, PromoteTraffic):
                self._set(self.weight, (plan,), 100)
        if after.finished and not (before is not None and before.finished):
            self.runs.labels(after.outcome).inc()
            if after.outcome == "rolled_back":
                self._set(self.weight, (plan,), 0)
                # failed_at is the failing input's time: for analysis and guard failures the window's event,
                # so this measures from the breach as measured, not from when the hold would have ended
                if after.failed_at is not None:
                    self.breach_to_rollback.observe((at - after.failed_at).total_seconds())

    def _count(self, plan: str, data: Message, received: Message | None) -> None:
        if isinstance(data, StepFailed):
            self.rollbacks.labels(data.cause).inc()
        elif isinstance(data, StageJudged):
            self.stages.labels(plan, str(data.stage), data.verdict).inc()
        elif isinstance(data, WindowJudged):
            stage = str(data.where.stage)
            self.windows.labels(plan, stage, data.probe, data.verdict).inc()
            if data.guard and isinstance(received, ProbeWindow):
                for name, value in received.stats.gauges.items():
                    if name in GAUGES:  # the guard gauges golive knows: a label value from a fixed list
                        self._set(self.guard_value, (plan, stage, name), value)
            elif not data.guard:
                if data.p95_ms is not None:
                    self._set(self.check_p95, (plan, stage, data.probe), data.p95_ms)
                if data.error_rate_pct is not None:
                    self._set(self.check_error_rate, (plan, stage, data.probe), data.error_rate_pct)

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        gauge.labels(*labels).set(value)
        self._series[labels[0]].add((gauge, labels))

    def forget(self, state: RunState) -> None:
        """A run ended or went to another coordinator: when no other run of its plan is driven here, the plan's
        gauges go (a long-lived coordinator must not keep the series of every plan it ever ran)."""
        plan = state.plan.name
        self._runs[plan].discard(state.run_id)
        if self._runs[plan]:
            return
        del self._runs[plan]
        for gauge, labels in self._series.pop(plan, set()):
            try:
                gauge.remove(*labels)
            except KeyError:
                pass  # already gone
