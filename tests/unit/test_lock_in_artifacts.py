"""The lock-in artifacts (validation file, report.json, report.md, badges) tell the run's story: a rolled-back run reads
as rolled back at first glance, with the numbers that decided it, every stage's windows and checks, who did what, and
what was undone and kept. Runs told through the coordinator's saga (tests/unit/story_runs.py)."""

from __future__ import annotations

import re

import anybadge

from golive.plans import RUNBOOK
from golive.services.coordinator.artifacts import build_artifacts
from golive.services.coordinator.steps import build_steps, describe_step
from golive.services.prober.run import probes_completed
from golive.shared.events import ContinueRequested, PauseRequested
from golive.shared.plan import load_plan
from tests.unit.saga_run import probe_result
from tests.unit.story_runs import failing_stage_two, held_stage_one, rolled_back_at_stage_two, runbook_run, went_live


def fill_of(color: str) -> str:
    """The fill anybadge gives a badge's value in ``color``."""
    svg = anybadge.Badge("x", "y", default_color=color).badge_svg_text
    return re.findall(r'path fill="(#[0-9A-Fa-f]+)"', svg)[1]


GREEN, RED = fill_of("green"), fill_of("red")


def value_fill(svg: str) -> str:
    return re.findall(r'path fill="(#[0-9A-Fa-f]+)"', svg)[1]


def text_of(svg: str) -> str:
    return " ".join(re.findall(r">([^<>]+)</text>", svg))


def paused_and_rolled_back():
    run = held_stage_one(runbook_run())
    run.advance_to("stage2:shift:50")
    run.operator(PauseRequested(reason="checking the dashboards", requested_by="ana"))
    run.operator(ContinueRequested(requested_by="ana", reason="dashboards fine"))
    return failing_stage_two(run)


# --- finding 1: rollbacks look green --------------------------------------------------------------------------------


def test_a_rolled_back_run_has_a_red_outcome_badge_and_its_numbers_badges_from_the_deciding_stage():
    badges = build_artifacts(rolled_back_at_stage_two().stream, chart=False).badges

    outcome = badges["badge-outcome.svg"]
    assert "rolled back" in text_of(outcome) and value_fill(outcome) == RED
    errors = badges["badge-error-rate.svg"]
    assert "50.00%" in text_of(errors) and value_fill(errors) == RED
    assert all(value_fill(svg) != GREEN for svg in badges.values()), {n: text_of(s) for n, s in badges.items()}


def test_a_run_that_went_live_has_green_badges():
    badges = build_artifacts(went_live().stream, chart=False).badges

    assert "live" in text_of(badges["badge-outcome.svg"])
    assert all(value_fill(svg) == GREEN for svg in badges.values()), {n: text_of(s) for n, s in badges.items()}


def test_the_validation_file_carries_every_stage_window_failing_first_and_names_what_failed():
    validation = build_artifacts(rolled_back_at_stage_two().stream, chart=False).validation

    meta, checks = validation["validation_metadata"], validation["checks"]
    assert meta["overall_passed"] is False
    assert meta["failed"] == ["stage 2 (50%): recent window 0 error_rate_pct",
                              "stage 2 (50%): recent window 1 error_rate_pct"]
    assert [c["name"] for c in checks[:2]] == meta["failed"] and not any(c["passed"] for c in checks[:2])
    assert all(c["passed"] for c in checks[2:])
    windows = {(c["stage"], c["probe"], c["window"]) for c in checks if c["kind"] == "window"}
    assert windows == {("stage 1 (10%)", "recent", 0), ("stage 1 (10%)", "db", 0), ("stage 1 (10%)", "recent", 1),
                       ("stage 2 (50%)", "recent", 0), ("stage 2 (50%)", "recent", 1)}
    failed = checks[0]
    assert (failed["value"], failed["threshold"], failed["verdict"], failed["samples"]) == (50.0, 1.5, "fail", 1200)
    assert meta["reason"] == "stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows"


def test_a_failed_check_is_listed_as_failed_when_the_run_did_not_pass():
    run = runbook_run()
    run.answer(probe_result("backup_done", passed=False, summary="p95 512.00 > 400 over 300 requests", label="preflight"))
    meta = build_artifacts(run.stream, chart=False).validation["validation_metadata"]

    assert meta["overall_passed"] is False and meta["failed"] == ["preflight: backup_done p95_ms"]


# --- finding 5: missing from the record -----------------------------------------------------------------------------


def test_report_json_carries_operator_actions_breach_to_rollback_and_what_was_undone_and_kept():
    run = paused_and_rolled_back()
    report = build_artifacts(run.stream, chart=False).report

    assert [(a["kind"], a["by"], a["why"]) for a in report["operator_actions"]] == [
        ("approve", "maksim", "snapshot 02:01 verified in the console"), ("pause", "ana", "checking the dashboards"),
        ("continue", "ana", "dashboards fine")]
    assert report["operator_actions"][0]["gate"] == "Confirm backup completion"
    assert report["health"] == "RolledBack"
    assert report["reason"] == "stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows"
    assert report["breach_to_rollback_s"] > 0 and report["rollback_s"] >= 0
    assert [u["undoes"] for u in report["undone"]] == ["stage1:shift:10", "migrate"]
    assert report["kept"] == []
    assert [(s["weight"], s["verdict"], s["failed_windows"]) for s in report["stages"]] == [
        (10, "pass", 0), (50, "fail", 2), (100, None, 0)]


def test_report_says_which_indexes_were_kept_when_the_plan_keeps_them():
    run = rolled_back_at_stage_two(**{"rollback: {drop_indexes: true}": "rollback: {drop_indexes: false}"})
    artifacts = build_artifacts(run.stream, chart=False)

    assert artifacts.report["kept"] == ["idx_events_created"]
    assert "kept: idx_events_created (rollback.drop_indexes is false)" in artifacts.markdown


def test_report_md_opens_with_the_outcome_and_the_reason_with_its_numbers_then_who_did_what():
    markdown = build_artifacts(paused_and_rolled_back().stream, chart=False).markdown
    head = markdown.splitlines()[:12]

    assert head[0] == "# Go-live report: checkout"
    assert "**ROLLED BACK**: stage 2 (50%) failed: recent error rate 50% > 1.5% in 2 consecutive windows" in head
    assert any(line.startswith("- breach to rollback: ") for line in head), head
    assert any(line.startswith("- stages: 10% ✓ → 50% ✗ → 100% ·") for line in head), head
    assert '| ana | paused | checking the dashboards |' in markdown
    assert '| maksim | approved "Confirm backup completion" | snapshot 02:01 verified in the console |' in markdown


# --- finding 6: wording ---------------------------------------------------------------------------------------------


def test_no_step_name_is_repeated_in_a_failure_line_and_the_outcome_names_no_step():
    markdown = build_artifacts(rolled_back_at_stage_two().stream, chart=False).markdown

    assert "stage2:hold failed: stage2:hold" not in markdown
    assert not re.search(r"stage\d:hold: stage\d:hold", markdown)
    assert "Rolled back: stage1:shift:10" not in markdown


def test_a_probe_set_summary_counts_in_words():
    one = probes_completed([probe_result("recent", passed=True, summary="p95 3.10 <= 400")], _NoStop())
    three = probes_completed([probe_result(p, passed=True, summary="s") for p in ("a", "b", "c")], _NoStop())
    failing = probes_completed([probe_result("recent", passed=False, summary="p95 512 > 400")], _NoStop())

    assert one.summary.startswith("1 probe passed; ") and three.summary.startswith("all 3 probes passed; ")
    assert failing.summary.startswith("1 probe failed; ")


def test_byte_limits_are_printed_as_numbers_a_person_reads():
    plan = load_plan(RUNBOOK)
    hold = next(s for s in build_steps(plan, "dpl_new", "dpl_old") if s.kind == "hold")

    detail = describe_step(hold)
    assert "wal_lag_bytes 104,857,600" in detail and "e+" not in detail, detail


class _NoStop:
    """A stop signal never set (the probes ran to their end)."""

    reason = ""

    def is_set(self) -> bool:
        return False


def test_report_page_prints_numbers_as_a_person_reads_them():
    html = build_artifacts(rolled_back_at_stage_two().stream).html

    assert ">400<" in html and ">400.0<" not in html and ">1.5<" in html
    assert ">1,200<" in html  # a window's requests


def test_a_paused_run_reads_paused_with_who_paused_it():
    run = held_stage_one(runbook_run())
    run.operator(PauseRequested(reason="checking the dashboards", requested_by="ana"))
    artifacts = build_artifacts(run.stream, chart=False)

    assert artifacts.report["health"] == "Paused" and artifacts.report["outcome_words"] == "paused"
    assert "**PAUSED**" in artifacts.markdown and "| ana | paused | checking the dashboards |" in artifacts.markdown
    assert "paused" in text_of(artifacts.badges["badge-outcome.svg"])
