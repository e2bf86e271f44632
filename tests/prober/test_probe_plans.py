"""Probes as a plan author writes them: every kind validates, bad ones are refused with the reason, and
each check becomes the RunProbe the prober runs."""

from __future__ import annotations

import pytest

from golive.services.coordinator.steps import build_steps
from golive.shared.commands import HttpProbeSpec, PgHealthProbeSpec, RunProbe, RunProbes, SqlProbeSpec
from golive.shared.plan import PlanError, parse_plan

PLAN = """
name: probes
database: {url_env: GOLIVE_DATABASE_URL}
probes:
  signup_exists:
    query: SELECT EXISTS (SELECT 1 FROM auth.users WHERE email = %s)
    params_from: {kind: sample, query: "SELECT email FROM auth.users LIMIT 1000"}
  app_health:
    kind: http
    url: http://127.0.0.1:8080/api/health
    headers_env: {Authorization: APP_TOKEN}
    body_contains: ok
  db_health:
    kind: pg_health
    replica_url_envs: [GOLIVE_REPLICA_URL]
    long_transaction: 30s
smoke:
  - probe: signup_exists
    duration: 60s
    concurrency: 4
    load: {mode: open, rate: 200, warmup_s: 2}
    window: 10s
    thresholds: {p95_ms: 10, error_rate_pct: 1}
canary:
  stages:
    - weight: 100
      hold: 30s
      checks:
        - {probe: app_health, thresholds: {p95_ms: 400, error_rate_pct: 1}}
        - {probe: db_health, load: {mode: open, rate: 1}, thresholds: {replica_lag_s: 8, wal_lag_bytes: 104857600, connection_use_pct: 80}}
"""


def probe_commands(text: str) -> dict[str, RunProbe]:
    """Each RunProbe by step name; a stage hold's (one RunProbes) as ``stage<N>:hold:<probe>``."""
    steps = build_steps(parse_plan(text), "dpl_new", "dpl_old")
    commands = {step.name: step.command for step in steps if isinstance(step.command, RunProbe)}
    commands |= {f"{step.name}:{p.probe.name}": p for step in steps if isinstance(step.command, RunProbes)
                 for p in step.command.probes}
    return commands


def test_each_probe_kind_becomes_its_run_probe_command():
    commands = probe_commands(PLAN)

    smoke = commands["smoke:signup_exists"]
    assert isinstance(smoke.probe, SqlProbeSpec) and smoke.probe.params_from.kind == "sample"
    assert (smoke.load.mode, smoke.load.rate, smoke.load.warmup_s, smoke.window_s) == ("open", 200, 2, 10)
    assert smoke.probe.database_url_env == "GOLIVE_DATABASE_URL"
    health = commands["stage1:hold:app_health"]
    assert isinstance(health.probe, HttpProbeSpec) and health.probe.headers_env == {"Authorization": "APP_TOKEN"}
    assert health.duration_s == 30
    db = commands["stage1:hold:db_health"]
    assert isinstance(db.probe, PgHealthProbeSpec) and db.probe.long_transaction_s == 30
    assert db.thresholds.replica_lag_s == 8 and db.probe.replica_url_envs == ["GOLIVE_REPLICA_URL"]


def test_a_run_probe_of_the_first_version_still_reads_as_an_sql_probe():
    old = {"probe": {"name": "q", "database_url_env": "DB", "query": "SELECT 1"}, "duration_s": 1, "concurrency": 2}
    cmd = RunProbe.model_validate(old)
    assert isinstance(cmd.probe, SqlProbeSpec) and cmd.load.mode == "closed"


def test_http_probe_without_a_url_is_refused():
    with pytest.raises(PlanError, match="an http probe needs a url"):
        parse_plan(PLAN.replace("url: http://127.0.0.1:8080/api/health", "url: null"))


def test_sql_probe_without_a_query_is_refused():
    with pytest.raises(PlanError, match="an sql probe needs a query"):
        parse_plan(PLAN.replace("query: SELECT EXISTS (SELECT 1 FROM auth.users WHERE email = %s)", "query: null"))


def test_open_loop_without_a_rate_is_refused():
    with pytest.raises(PlanError, match="needs a rate"):
        parse_plan(PLAN.replace("{mode: open, rate: 200, warmup_s: 2}", "{mode: open}"))


def test_baseline_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="compare like with like"):
        RunProbe(probe=HttpProbeSpec(name="a", url="http://x"), duration_s=1,
                 baseline=SqlProbeSpec(name="b", database_url_env="DB", query="SELECT 1"))


def test_fixed_params_and_a_generator_together_are_refused():
    with pytest.raises(PlanError, match="not both"):
        parse_plan(PLAN.replace("params_from: {kind: sample,", "params: [x]\n    params_from: {kind: sample,"))


def test_the_plans_alpha_is_the_false_alarm_budget_of_every_comparison_with_stable():
    """analysis.alpha (default 0.01) reaches each check's RunProbe; the runbook's health check is the one compared."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "golive" / "plans" / "supabase-golive.yaml").read_text()
    default = probe_commands(text)["stage1:hold:app_health"]
    assert default.alpha == 0.01 and default.baseline is not None and default.thresholds.p95_increase_ms == 50
    stricter = probe_commands(text.replace("  min_samples: 20\n", "  min_samples: 20\n  alpha: 0.001\n", 1))
    assert stricter["stage1:hold:app_health"].alpha == 0.001
    with pytest.raises(PlanError, match="alpha"):
        parse_plan(text.replace("  min_samples: 20\n", "  min_samples: 20\n  alpha: 1.5\n", 1))
