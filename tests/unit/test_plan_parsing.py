"""Plan files are validated before anything runs; every problem names its path and its YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.coordinator.plan import PlanError, load_plan, parse_plan

SKELETON = Path(__file__).resolve().parents[2] / "plans" / "skeleton.yaml"

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

    assert the_problem(text) == f"rollback.drop_index (line {line_of(text, 'drop_index:')}): Extra inputs are not permitted"


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

    assert the_problem(text).startswith("database (line 1): Field required")


def test_text_that_is_not_yaml_is_rejected_with_the_origin():
    with pytest.raises(PlanError, match=r"^plans/broken\.yaml: not valid YAML"):
        parse_plan("name: [unclosed", "plans/broken.yaml")


def test_yaml_that_is_not_a_mapping_is_rejected():
    with pytest.raises(PlanError, match=r"^<plan>: a plan is a YAML mapping$"):
        parse_plan("- just\n- a list\n")


def test_unreadable_plan_file_is_reported_with_its_path(tmp_path):
    missing = tmp_path / "missing.yaml"

    with pytest.raises(PlanError, match=f"^{missing}: cannot read: "):
        load_plan(missing)
