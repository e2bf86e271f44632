"""Probe kinds are modelled once (shared/plan/probes/, one module each, one registry): a command carries the
plan's own probe, named and resolved; stored plans of the first format (one model for every kind) still read."""

from __future__ import annotations

import pytest

from golive.services.prober.targets import KINDS as PROBER_KINDS
from golive.shared.commands import RunProbe
from golive.shared.envelope import new_envelope
from golive.shared.events import RunStarted
from golive.shared.plan import PlanError, parse_plan, plan_of
from golive.shared.plan.probes import KINDS, HttpProbe, HttpProbeSpec, PgHealthProbe, PgHealthProbeSpec, SqlProbe, SqlProbeSpec

PLAN = """\
name: kinds
database: {url_env: DB_URL}
targets: {deployment_url: "https://app-{deployment}.example.com"}
probes:
  recent: {query: SELECT 1, timeout_ms: 500}
  health: {kind: http, url: /api/health, method: HEAD, expect_status: 204}
  gauges: {kind: pg_health, replica_url_envs: [REPLICA_URL], long_transaction: 2m}
canary:
  stages:
    - {weight: 100, hold: 30s, checks: [{probe: recent}, {probe: health}, {probe: gauges}]}
"""

# a probe of each kind as the first plans stored it in run_started: every kind's field, most at its default
FIRST_FORMAT_PROBE = {
    "allow_writes": False, "body": None, "body_contains": None, "database_url_env": None, "expect_status": None,
    "headers": {}, "headers_env": {}, "long_transaction": 60.0, "method": "GET", "params": [], "params_from": None,
    "pgbouncer_admin_url_env": None, "query": None, "replica_url_envs": [], "timeout_ms": 2000, "url": None,
}


def stored(plan: dict) -> RunStarted:
    envelope = new_envelope(RunStarted(plan=plan, plan_name="kinds", deploy_id="dpl_new"), id="run-k/started",
                            source="/golive/coordinator", runid="run-k")
    return envelope.data


def test_every_probe_kind_of_the_plan_has_a_target_in_the_prober():
    assert set(KINDS) == set(PROBER_KINDS) == {"sql", "http", "pg_health", "prometheus"}


PROMETHEUS = """\
name: traffic
database: {url_env: DB_URL}
probes:
  users:
    kind: prometheus
    url: "${PROMETHEUS_URL}"
    queries:
      rate: 'sum(rate(http_requests_total{deployment="{deployment}"}[{window}]))'
      error_ratio: 'sum(rate(http_requests_total{deployment="{deployment}",code="5xx"}[{window}])) / %s'
      latency: 'histogram_quantile({quantile}, sum by (le) (rate(http_seconds_bucket{deployment="{deployment}"}[{window}])))'
canary:
  stages:
    - {weight: 100, hold: 30s, checks: [{probe: users}]}
"""


def test_a_prometheus_probe_aims_its_queries_at_each_checks_deployment():
    plan = parse_plan(PROMETHEUS % "1")
    spec = plan.probe_spec("users", "dpl_new")

    assert plan.names_deployment("users")  # so a baseline compares canary and stable
    assert spec.kind == "prometheus" and spec.url == "${PROMETHEUS_URL}"
    sent = spec.queries.as_sent("30000ms", 0.95)
    assert sent["rate"] == 'sum(rate(http_requests_total{deployment="dpl_new"}[30000ms]))'
    assert sent["latency"].startswith("histogram_quantile(0.95, ")
    assert RunProbe.model_validate(RunProbe(probe=spec, duration_s=1).model_dump(mode="json")).probe == spec


@pytest.mark.parametrize("query, why", [
    ('sum(rate(x[5m]))', "put {window} in its range"),
    ('histogram_quantile(0.95, sum by (le) (rate(x_bucket[{window}])))', "put {quantile} in it"),
])
def test_a_prometheus_probes_query_names_its_window_and_quantile(query, why):
    text = PROMETHEUS % "1"
    field = "rate" if "quantile" not in query else "latency"
    line = next(line for line in text.splitlines() if line.strip().startswith(f"{field}:"))
    with pytest.raises(PlanError) as refused:
        parse_plan(text.replace(line, f"      {field}: '{query}'"))
    assert why in str(refused.value), refused.value


def test_a_commands_probe_is_the_plans_probe_named_and_resolved():
    plan = parse_plan(PLAN)

    sql, http, gauges = (plan.probe_spec(name, "dpl_new") for name in ("recent", "health", "gauges"))

    assert isinstance(sql, SqlProbeSpec) and isinstance(sql, SqlProbe)
    assert (sql.name, sql.database_url_env, sql.timeout_ms) == ("recent", "DB_URL", 500)
    assert isinstance(http, HttpProbeSpec) and isinstance(http, HttpProbe)
    assert (http.url, http.method, http.expect_status) == ("https://app-dpl_new.example.com/api/health", "HEAD", 204)
    assert isinstance(gauges, PgHealthProbeSpec) and isinstance(gauges, PgHealthProbe)
    assert (gauges.database_url_env, gauges.replica_url_envs, gauges.long_transaction_s) == ("DB_URL", ["REPLICA_URL"], 120)
    # and travels in a RunProbe as the command always spelt it
    wire = RunProbe(probe=gauges, duration_s=1).model_dump(mode="json")["probe"]
    assert wire["long_transaction_s"] == 120 and "long_transaction" not in wire
    assert RunProbe.model_validate({"probe": wire, "duration_s": 1}).probe == gauges


def test_a_plan_stores_each_probe_with_its_own_kinds_fields_only():
    probes = parse_plan(PLAN).model_dump(mode="json")["probes"]

    assert set(probes["recent"]) == {"kind", "timeout_ms", "query", "params", "params_from", "allow_writes",
                                     "database_url_env"}
    assert set(probes["health"]) == {"kind", "timeout_ms", "url", "method", "headers", "headers_env", "body",
                                     "expect_status", "body_contains", "deployment_header"}
    assert probes["gauges"]["long_transaction"] == 120 and "long_transaction_s" not in probes["gauges"]


def test_a_stored_plan_of_the_first_format_reads_each_probe_as_its_kind():
    plan = parse_plan(PLAN).model_dump(mode="json", exclude={"version"})  # as run_started stores it
    plan["probes"] = {
        "recent": {**FIRST_FORMAT_PROBE, "kind": "sql", "query": "SELECT 1", "timeout_ms": 500},
        "health": {**FIRST_FORMAT_PROBE, "kind": "http", "url": "/api/health", "method": "HEAD", "expect_status": 204},
        # that format ignored another kind's fields whatever they held: a stored plan is read as it was
        "gauges": {**FIRST_FORMAT_PROBE, "kind": "pg_health", "replica_url_envs": ["REPLICA_URL"],
                   "long_transaction": 120.0, "query": "SELECT 'ignored'"},
    }

    assert plan_of(stored(plan)) == parse_plan(PLAN)


def test_in_a_plan_file_a_field_of_another_kind_is_an_error_naming_it():
    text = PLAN.replace("{kind: http, url: /api/health,", "{kind: http, url: /api/health, query: SELECT 1,")

    with pytest.raises(PlanError) as raised:
        parse_plan(text)

    assert raised.value.problems == ["probes.health.query (line 6): unknown key 'query' (known here: body, body_contains, "
                                     "deployment_header, expect_status, headers, headers_env, kind, method, timeout_ms, url)"]


def test_a_field_of_another_kind_at_its_first_format_default_is_no_error():
    text = PLAN.replace("{kind: http, url: /api/health,", "{kind: http, url: /api/health, query: null, params: [],")

    assert parse_plan(text) == parse_plan(PLAN)


def test_an_unknown_kind_names_the_kinds_there_are():
    with pytest.raises(PlanError, match=r"probes.gauges \(line 7\): a probe's kind is one of sql, http, pg_health"):
        parse_plan(PLAN.replace("kind: pg_health", "kind: grpc"))
