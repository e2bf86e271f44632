"""The coordinator's metrics from the saga's decisions: the judged numbers (per check p95 and error rate, guard
values, window and stage verdicts, breach to rollback) with bounded labels only, and no series left per run.
Subjects as patterns for FastStream's labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest

from golive.services.coordinator.metrics import RunMetrics
from golive.shared.envelope import Envelope
from golive.shared.subjects import Subjects
from tests.unit.saga_run import Run, plan_from, replaced
from tests.unit.story_runs import PLAN as RUNBOOK_PLAN

# the story tests' runbook-shaped plan without its preflight, its 50% stage, final validation and lock-in: the
# stages and the guard are what the metrics are of
PLAN = replaced(
    RUNBOOK_PLAN,
    **{"preflight:\n  - {gate: Confirm backup completion}\n"
       "  - {probe: backup_done, duration: 2s, thresholds: {error_rate_pct: 0}}\n": "",
       "  backup_done: {query: SELECT 1}\n": "",
       "    - {weight: 50, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1.5}}]}\n": "",
       "final_validation: [{probe: recent, duration: 10s, thresholds: {p95_ms: 100}}]\nlock_in: {promote: true}\n": ""})


@dataclass
class Observed(Run):
    """A run whose every decision also goes to RunMetrics, as the coordinator's shell does."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    metrics: RunMetrics | None = None

    def __post_init__(self) -> None:
        self.metrics = self.metrics or RunMetrics(self.registry)

    def feed(self, item):
        before = self.state
        outputs = super().feed(item)
        at = item.time if isinstance(item, Envelope) else item.now
        self.metrics.observe(before, self.state, outputs, at, item.data if isinstance(item, Envelope) else None)
        if self.state is not None and self.state.finished:
            self.metrics.forget(self.state)
        return outputs

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def at_first_hold(run_id: str = "run-1", shared_with: Observed | None = None) -> Observed:
    """A run at its first stage hold; ``shared_with``: exporting into that run's metrics (one coordinator)."""
    run = Observed(run_id=run_id, plan=plan_from(PLAN))
    if shared_with is not None:
        run.registry, run.metrics = shared_with.registry, shared_with.metrics
    run.start()
    run.advance_to("stage1:hold")
    return run


def test_a_judged_window_exports_its_checks_p95_and_error_rate_and_counts_its_verdict():
    run = at_first_hold()

    run.window(0, p95=120.0, count=1_000, errors=5)
    run.window(1, p95=450.0)

    labels = {"plan": "checkout", "stage": "1", "probe": "recent"}
    assert run.value("golive_check_p95_ms", **labels) == 450.0
    assert run.value("golive_check_error_rate_percent", **labels) == 0.0  # the last window's
    assert run.value("golive_windows_judged_total", **labels, verdict="pass") == 1
    assert run.value("golive_windows_judged_total", **labels, verdict="fail") == 1
    assert run.value("golive_run_step", plan="checkout") == run.state.position
    assert run.value("golive_run_canary_weight", plan="checkout") == 10


def test_a_guard_window_exports_its_gauges_and_its_breach_rolls_back_into_the_histogram_and_stage_counter():
    run = at_first_hold()

    run.window(0, probe="db", count=15, replica_lag_s=9.5, connection_use_pct=40.0)
    assert run.value("golive_guard_value", plan="checkout", stage="1", gauge="replica_lag_s") == 9.5
    assert run.value("golive_guard_value", plan="checkout", stage="1", gauge="connection_use_pct") == 40.0
    assert run.value("golive_windows_judged_total", plan="checkout", stage="1", probe="db", verdict="fail") == 1
    assert run.value("golive_stages_judged_total", plan="checkout", stage="1", verdict="fail") == 1
    assert run.value("golive_rollbacks_total", cause="guard") == 1

    while not run.state.finished:
        run.succeed()  # the rollback's commands
    assert run.value("golive_runs_total", outcome="rolled_back") == 1
    assert run.value("golive_breach_to_rollback_seconds_count") == 1
    assert run.value("golive_breach_to_rollback_seconds_sum") > 0


def test_a_passed_stage_is_counted():
    run = at_first_hold()
    run.window(0)
    run.succeed()  # the hold's answer
    assert run.value("golive_stages_judged_total", plan="checkout", stage="1", verdict="pass") == 1


def test_no_label_holds_a_run_id_and_the_plans_gauges_go_when_its_last_run_ends():
    first = at_first_hold("run-first")
    second = at_first_hold("run-second", shared_with=first)
    registry = first.registry
    for run in (first, second):
        run.window(0)
        # every gauge the plan limits, read: a guard window with a gauge unread is inconclusive and would pause the run
        run.window(0, probe="db", count=15, replica_lag_s=0.5, connection_use_pct=12.0)
    assert "run-" not in generate_latest(registry).decode()

    while not first.state.finished:
        first.succeed()
    # the other run of the plan still stands where it is: its gauges stay
    assert first.value("golive_check_p95_ms", plan="checkout", stage="1", probe="recent") == 120.0
    while not second.state.finished:
        second.succeed()
    exported = generate_latest(registry).decode()
    for gauge in ("golive_run_step", "golive_run_canary_weight", "golive_check_p95_ms", "golive_guard_value",
                  "golive_check_error_rate_percent"):
        assert f"\n{gauge}{{" not in exported, gauge
    assert first.value("golive_runs_total", outcome="succeeded") == 2
    assert first.value("golive_stages_judged_total", plan="checkout", stage="2", verdict="pass") == 2


def test_subjects_become_patterns_without_a_run_id():
    s = Subjects("golive")
    assert s.pattern(s.event("run-42", "prober", "probe_window")) == "golive.evt.*.prober.probe_window"
    assert s.pattern(s.stop_probes("run-42")) == "golive.ctl.prober.*"
    assert s.pattern(s.command("migrator", "apply")) == "golive.cmd.migrator.apply"
    assert s.pattern(s.dead_letter("traffic")) == "golive.dlq.traffic"
    # outside golive's subjects, or not shaped as golive builds them: one bounded value
    for subject in ("_INBOX.abc123", "other.evt.run-1.prober.x", "golive.evt.run-1", "golive.cmd.nobody.x",
                    "golive.ctl.prober.run-1.extra"):
        assert s.pattern(subject) == "other", subject
