"""Plan files are validated before anything runs; every problem names its path and its YAML line."""

from __future__ import annotations

import pytest

from golive.shared.plan import PlanError, load_plan, parse_plan
from tests.builders import SKELETON

VALID = """\
name: checkout
database:
  url_env: DB_URL
migrations:
  statements:
    - name: events_created
      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)
probes:
  recent:
    query: SELECT 1
smoke:
  - probe: recent
    duration: 5s
canary:
  stages:
    - weight: 10
      hold: 30s
      checks: [{probe: recent}]
    - weight: 50
      hold: 1m
    - weight: 100
      hold: 90
rollback:
  drop_indexes: true
"""


def variant(old: str, new: str) -> str:
    assert VALID.count(old) == 1, f"{old!r} must occur once in the plan text"
    return VALID.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line containing ``fragment``."""
    (line,) = [n for n, content in enumerate(text.splitlines(), start=1) if fragment in content]
    return line


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as raised:
        parse_plan(text)
    return raised.value.problems


def the_problem(text: str) -> str:
    (problem,) = problems(text)
    return problem


def test_valid_plan_parses_durations_to_seconds():
    plan = parse_plan(VALID)

    assert [s.weight for s in plan.canary.stages] == [10, 50, 100]
    assert [s.hold for s in plan.canary.stages] == [30.0, 60.0, 90.0]
    assert plan.smoke[0].duration == 5.0
    assert plan.canary.stages[0].checks[0].duration is None
    assert plan.timeouts.step == 600.0
    assert plan.rollback.drop_indexes is True


def test_skeleton_plan_is_valid():
    plan = load_plan(SKELETON)

    assert plan.name == "skeleton"
    assert [s.weight for s in plan.canary.stages] == [10, 50, 100]
    assert plan.timeouts.step == 60.0


def test_unknown_key_is_rejected_with_its_path_and_line():
    text = variant("  drop_indexes: true", "  drop_index: true")

    assert the_problem(text) == (f"rollback.drop_index (line {line_of(text, 'drop_index:')}): unknown key 'drop_index'; "
                                 "did you mean 'drop_indexes'?")


def test_unknown_key_inside_a_list_item_names_the_item():
    text = variant("      checks: [{probe: recent}]", "      checks: [{probe: recent, treshold: 5}]")

    assert the_problem(text).startswith(f"canary.stages[0].checks[0].treshold (line {line_of(text, 'treshold')}): ")


def test_weights_that_do_not_increase_are_rejected_at_the_offending_stage():
    text = variant("    - weight: 50", "    - weight: 5")

    assert the_problem(text) == (
        f"canary.stages[1].weight (line {line_of(text, 'weight: 5')}): 5 is not higher than the previous stage (10); "
        "weights must increase and end at 100"
    )


def test_repeated_weight_is_rejected():
    text = variant("    - weight: 50", "    - weight: 10")

    assert "canary.stages[1].weight" in the_problem(text)
    assert "10 is not higher than the previous stage (10)" in the_problem(text)


def test_last_stage_below_100_is_rejected():
    text = variant("    - weight: 100", "    - weight: 90")

    problem = the_problem(text)
    assert problem.startswith(f"canary.stages[2].weight (line {line_of(text, 'weight: 90')}): ")
    assert "the last stage's weight is 90" in problem
    assert "100%" in problem


def test_weight_above_100_is_rejected():
    text = variant("    - weight: 100", "    - weight: 120")

    assert the_problem(text).startswith(f"canary.stages[2].weight (line {line_of(text, 'weight: 120')}): ")


@pytest.mark.parametrize(
    ("hold", "reason"),
    [("-90", "a duration cannot be negative"), ("-2s", "a duration cannot be negative"), (".inf", "not a finite duration")],
)
def test_negative_or_infinite_hold_is_rejected(hold, reason):
    text = variant("      hold: 90", f"      hold: {hold}")

    problem = the_problem(text)
    assert problem.startswith(f"canary.stages[2].hold (line {line_of(text, f'hold: {hold}')}): ")
    assert reason in problem


def test_zero_step_timeout_is_rejected():
    text = VALID + "timeouts:\n  step: 0s\n"

    assert the_problem(text).startswith(f"timeouts.step (line {line_of(text, 'step: 0s')}): ")


def test_stage_check_naming_an_unknown_probe_is_rejected_at_the_reference():
    text = variant("checks: [{probe: recent}]", "checks: [{probe: recnet}]")

    assert the_problem(text) == (
        f"canary.stages[0].checks[0].probe (line {line_of(text, 'recnet')}): no probe named 'recnet' (probes: recent)"
    )


def test_smoke_check_naming_an_unknown_probe_is_rejected_at_the_reference():
    text = variant("  - probe: recent", "  - probe: stripe_upsert")

    assert the_problem(text) == (
        f"smoke[0].probe (line {line_of(text, 'stripe_upsert')}): no probe named 'stripe_upsert' (probes: recent)"
    )


def test_smoke_check_without_a_duration_is_rejected():
    text = variant("    duration: 5s\n", "")

    problem = the_problem(text)
    assert problem.startswith(f"smoke[0].duration (line {line_of(text, '- probe: recent')}): ")
    assert "a smoke check needs a duration" in problem


def test_duplicate_statement_names_are_rejected_at_the_second_one():
    text = variant(
        "      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)\n",
        "      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)\n"
        "    - name: events_created\n"
        "      sql: ANALYZE events\n",
    )

    second = [n for n, content in enumerate(text.splitlines(), start=1) if "name: events_created" in content][1]
    problem = the_problem(text)
    assert problem.startswith(f"migrations.statements[1].name (line {second}): ")
    assert "'events_created'" in problem
    assert "unique" in problem


def test_notification_kinds_can_be_written_as_a_plain_on_key():
    # PyYAML reads an unquoted `on` key as the boolean True
    plan = parse_plan(VALID + "notifications:\n  on: [rollback, needs_human]\n")

    assert plan.notifications.on == ["rollback", "needs_human"]


def test_unknown_notification_kind_is_rejected_at_its_line():
    text = VALID + "notifications:\n  on: [rollback, deploy]\n"

    assert the_problem(text).startswith(f"notifications.on[1] (line {line_of(text, 'on: [')}): ")


def test_every_field_problem_is_reported_at_once():
    text = variant("  drop_indexes: true", "  drop_index: true").replace("      hold: 90", "      hold: soon")

    reported = problems(text)

    assert len(reported) == 2
    assert any(p.startswith("rollback.drop_index ") for p in reported)
    assert any(p.startswith("canary.stages[2].hold ") and "'soon' is not a duration" in p for p in reported)


def test_missing_required_section_is_named():
    text = variant("database:\n  url_env: DB_URL\n", "")

    assert the_problem(text) == "database (line 1): missing (required)"


def test_text_that_is_not_yaml_is_rejected_with_the_origin_and_the_line_never_a_placeholder():
    with pytest.raises(PlanError) as raised:
        parse_plan("name: checkout\nprobes: [unclosed\n", "plans/broken.yaml")

    (problem,) = raised.value.problems
    assert problem.startswith("plans/broken.yaml:3: not valid YAML at column 1: "), problem
    assert "opened on line 2" in problem and "<unicode string>" not in problem, problem


def test_yaml_that_is_not_a_mapping_is_rejected():
    with pytest.raises(PlanError, match=r"^plans/list\.yaml: a plan is a YAML mapping"):
        parse_plan("- just\n- a list\n", "plans/list.yaml")


def test_unreadable_plan_file_is_reported_with_its_path(tmp_path):
    missing = tmp_path / "missing.yaml"

    with pytest.raises(PlanError, match=f"^{missing}: cannot read: "):
        load_plan(missing)


# --- preflight, targets, analysis, guards, baseline, final validation, lock-in, post_deploy ------------

RUNBOOK_KEYS = VALID.replace("probes:\n  recent:\n    query: SELECT 1\n", """\
probes:
  recent:
    query: SELECT 1
  app_health:
    kind: http
    url: /api/health
  db_health:
    kind: pg_health
""").replace("      checks: [{probe: recent}]", "      checks: [{probe: recent}, {probe: app_health}]") + """\
targets:
  deployment_url: "http://127.0.0.1:8080/deployments/{deployment}"
preflight:
  - {gate: Confirm backup completion}
  - {probe: recent, duration: 2s, thresholds: {error_rate_pct: 0}}
analysis: {interval: 10s, min_samples: 5, failure_limit: 2, consecutive_failure_limit: 2, inconclusive: fail}
guards: {probe: db_health, replica_lag_s: 8, wal_lag_bytes: 104857600, connection_use_pct: 80}
baseline: {p95_increase_ms: 50}
final_validation: [{probe: recent, duration: 10s, thresholds: {p95_ms: 100}}]
lock_in: {promote: true}
post_deploy: {period: 7d, health_every: 1h, summary_every: 1d, checks: [{probe: recent, duration: 30s}]}
"""


def runbook_variant(old: str, new: str) -> str:
    assert RUNBOOK_KEYS.count(old) == 1, f"{old!r} must occur once in the plan text"
    return RUNBOOK_KEYS.replace(old, new)


def test_runbook_keys_parse_with_their_defaults_and_durations():
    plan = parse_plan(RUNBOOK_KEYS)

    gate, check = plan.preflight
    assert gate.gate == "Confirm backup completion" and check.probe == "recent" and check.duration == 2.0
    assert (plan.analysis.interval, plan.analysis.min_samples, plan.analysis.inconclusive) == (10.0, 5, "fail")
    assert plan.guards.limits() == {"replica_lag_s": 8, "wal_lag_bytes": 104857600, "connection_use_pct": 80}
    assert plan.guards.sample_every == 1.0
    assert plan.baseline.p95_increase_ms == 50 and plan.lock_in.promote
    assert plan.final_validation[0].duration == 10.0
    assert (plan.post_deploy.period, plan.post_deploy.health_every, plan.post_deploy.summary_every) == (604800, 3600, 86400)
    assert plan.probe_url("app_health", "dpl_new") == "http://127.0.0.1:8080/deployments/dpl_new/api/health"


def test_plan_without_the_new_keys_keeps_totals_only_judging_and_no_lock_in():
    plan = parse_plan(VALID)

    assert plan.analysis is None and plan.guards is None and plan.baseline is None
    assert plan.preflight == [] and plan.final_validation == [] and not plan.lock_in.promote


def test_guard_probe_that_is_not_pg_health_is_rejected_at_guards_probe():
    text = runbook_variant("guards: {probe: db_health,", "guards: {probe: recent,")

    assert the_problem(text) == (
        f"guards.probe (line {line_of(text, 'guards:')}): 'recent' is a sql probe; guards read a pg_health probe's "
        "gauges (replica lag, WAL lag, connection use)"
    )


def test_guard_naming_an_unknown_probe_lists_the_pg_health_probes():
    text = runbook_variant("guards: {probe: db_health,", "guards: {probe: db,")

    assert the_problem(text).endswith("no probe named 'db' (pg_health probes: db_health)")


def test_guards_without_any_limit_are_rejected():
    text = runbook_variant("guards: {probe: db_health, replica_lag_s: 8, wal_lag_bytes: 104857600, connection_use_pct: 80}",
                           "guards: {probe: db_health}")

    assert "guards (line" in the_problem(text) and "set at least one limit" in the_problem(text)


def test_deployment_placeholder_outside_an_http_url_is_rejected():
    text = runbook_variant("    query: SELECT 1\n", "    query: SELECT '{deployment}'\n")

    assert the_problem(text).startswith(f"probes.recent.query (line {line_of(text, 'SELECT')}): {{deployment}} is filled "
                                        "in http probe urls only")


def test_deployment_url_template_must_name_the_deployment():
    text = runbook_variant('deployment_url: "http://127.0.0.1:8080/deployments/{deployment}"',
                           'deployment_url: "http://127.0.0.1:8080/deployments"')

    assert the_problem(text).startswith(f"targets.deployment_url (line {line_of(text, 'deployment_url')}): ")
    assert "{deployment}" in the_problem(text)


def test_http_probe_path_needs_targets_deployment_url():
    text = runbook_variant('targets:\n  deployment_url: "http://127.0.0.1:8080/deployments/{deployment}"\n', "")

    problem = the_problem(text)
    assert problem.startswith(f"probes.app_health.url (line {line_of(text, 'url: /api/health')}): ")
    assert "targets.deployment_url" in problem


def test_baseline_needs_an_http_check_aimed_at_a_deployment():
    text = runbook_variant("    url: /api/health\n", "    url: http://127.0.0.1:8080/api/health\n")

    assert the_problem(text).startswith(f"baseline (line {line_of(text, 'baseline:')}): a baseline compares http checks")


def test_preflight_check_without_a_duration_is_rejected_at_its_line():
    text = runbook_variant("  - {probe: recent, duration: 2s, thresholds: {error_rate_pct: 0}}",
                           "  - {probe: recent, thresholds: {error_rate_pct: 0}}")

    assert the_problem(text) == (
        f"preflight[1].duration (line {line_of(text, '- {probe: recent, thresholds')}): a preflight check needs a duration"
    )


def test_preflight_gate_with_an_unknown_key_names_the_item_without_its_union_tag():
    text = runbook_variant("  - {gate: Confirm backup completion}", "  - {gate: Confirm backup completion, stage: 1}")

    assert the_problem(text) == (
        f"preflight[0].stage (line {line_of(text, 'Confirm backup')}): unknown key 'stage' (known here: gate)"
    )


def test_stage_checking_a_probe_twice_or_the_guard_probe_is_rejected():
    twice = runbook_variant("{probe: app_health}]", "{probe: app_health}, {probe: recent}]")
    guard = runbook_variant("{probe: app_health}]", "{probe: app_health}, {probe: db_health}]")

    assert the_problem(twice).startswith("canary.stages[0].checks[2].probe (line")
    assert "'recent' is checked twice; a stage checks each probe once" in the_problem(twice)
    assert "'db_health' is the guard probe" in the_problem(guard)


def test_final_validation_check_needs_a_duration():
    text = runbook_variant("final_validation: [{probe: recent, duration: 10s, thresholds: {p95_ms: 100}}]",
                           "final_validation: [{probe: recent, thresholds: {p95_ms: 100}}]")

    assert the_problem(text).startswith("final_validation[0].duration (line")


def test_unknown_inconclusive_policy_is_rejected():
    text = runbook_variant("inconclusive: fail", "inconclusive: pass")

    assert the_problem(text).startswith(f"analysis.inconclusive (line {line_of(text, 'inconclusive')}): ")
