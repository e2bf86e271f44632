"""Runs told through the coordinator's saga (its pure decide(), tests/unit/saga_run.py) with a runbook-shaped plan:
the event streams the story and artifact tests fold (tests/unit/test_story.py, test_lock_in_artifacts.py). Its PLAN is
the one runbook-shaped plan of the unit tests: the others (runbook_hold.py, test_run_metrics.py, test_live_view.py)
are it with edits."""

from __future__ import annotations

from golive.shared.events import ApprovalGranted
from golive.shared.story import RunStory, story_of
from tests.unit.saga_run import Run, plan_from

PLAN = """
name: checkout
database: {url_env: DB_URL}
preflight:
  - {gate: Confirm backup completion}
  - {probe: backup_done, duration: 2s, thresholds: {error_rate_pct: 0}}
migrations:
  statements:
    - {name: events_created, sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)}
probes:
  backup_done: {query: SELECT 1}
  recent: {query: SELECT 1}
  db: {kind: pg_health}
smoke:
  - {probe: recent, duration: 5s}
canary:
  stages:
    - {weight: 10, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}]}
    - {weight: 50, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1.5}}]}
    - {weight: 100, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400}}]}
analysis: {interval: 30s, min_samples: 20, failure_limit: 3, consecutive_failure_limit: 2}
guards: {probe: db, replica_lag_s: 8, connection_use_pct: 80, sample_every: 2s}
final_validation: [{probe: recent, duration: 10s, thresholds: {p95_ms: 100}}]
lock_in: {promote: true}
rollback: {drop_indexes: true}
timeouts: {step: 60s}
retries: {attempts: 1}
"""


def runbook_run(plan: str = PLAN, **replacements: str) -> Run:
    """A run of ``plan`` (replacements applied) past its preflight gate, approved by maksim."""
    run = Run(plan=plan_from(plan, **replacements))
    run.start()
    run.operator(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot 02:01 verified in the console"))
    return run


def in_stage_one_hold(run: Run) -> Run:
    """``run`` into stage 1's hold, with its first window and a guard window measured."""
    run.advance_to("stage1:hold")
    run.window(0, p95=120)
    run.window(0, probe="db", count=30, replica_lag_s=1.5, connection_use_pct=40.0)
    return run


def held_stage_one(run: Run) -> Run:
    in_stage_one_hold(run)
    run.window(1, p95=130)
    run.succeed()
    return run


def rolled_back_at_stage_two(**replacements: str) -> Run:
    """Stage 1 holds; at 50% every second request fails: two failed windows in a row roll the run back."""
    return failing_stage_two(held_stage_one(runbook_run(**replacements)))


def failing_stage_two(run: Run) -> Run:
    """``run`` on to stage 2's hold, where every request fails: two failed windows in a row roll it back."""
    run.advance_to("stage2:hold")
    run.window(0, p95=130, count=600, errors=600)
    run.window(1, p95=140, count=600, errors=600)
    while not run.state.finished:
        run.succeed()
    return run


def went_live() -> Run:
    """Every step passes: the run goes live."""
    run = held_stage_one(runbook_run())
    while not run.state.finished:
        run.succeed()
    return run


def story(run: Run) -> RunStory:
    return story_of(run.stream)
