"""A stage hold's answer (ProbesCompleted) and the window verdicts (WindowJudged) as the artifacts and the
terminal show them."""

from __future__ import annotations

from datetime import UTC, datetime

from golive.services.coordinator.artifacts import build_artifacts
from golive.shared.events import ProbeCompleted, ProbesCompleted, RunFinished, RunStarted, Verdict, WindowJudged
from golive.views.lines import describe
from tests.builders import RunEvents, carried, skeleton_dict

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def result(probe: str, p95: float, limit: float) -> ProbeCompleted:
    return ProbeCompleted(probe=probe, label="stage 1 (10%)", count=1_000, errors=4, p50_ms=1, p95_ms=p95, p99_ms=p95,
                          max_ms=p95, duration_s=30, passed=p95 <= limit, summary="s",
                          verdicts=[Verdict(metric="p95_ms", limit=limit, observed=p95, passed=p95 <= limit)])


def envelopes(*data):
    run = RunEvents("run-1", start=T0)
    return [run.add(d) for d in data]


FAILED_WINDOW = WindowJudged(step="stage1:hold", probe="recent", index=1, verdict="fail", failures=2,
                             consecutive_failures=2, count=1_204, p95_ms=512,
                             reason="stage 1 (10%): recent window 1 failed: p95 512 ms > 400 ms over 1,204 requests (2 consecutive)")
PASSED_WINDOW = WindowJudged(step="stage1:hold", probe="recent", index=0, verdict="pass", reason="stage 1 (10%): recent window 0 passed")


def test_each_result_of_a_hold_is_a_check_of_the_validation_file_and_window_verdicts_are_decisions():
    hold = ProbesCompleted(results=[result("recent", 120, 400), result("app", 350, 300)], passed=False, summary="app: p95",
                           duration_s=30)
    artifacts = build_artifacts(envelopes(
        RunStarted(plan=carried(skeleton_dict()), plan_name="checkout", deploy_id="dpl_new"), PASSED_WINDOW, FAILED_WINDOW, hold,
        RunFinished(outcome="rolled_back", reason="r", duration_s=40)), chart=False)

    checks = [c for c in artifacts.validation["checks"] if c["kind"] == "check"]
    assert [(c["probe"], c["value"], c["threshold"], c["passed"], c["samples"]) for c in checks] == [
        ("app", 350, 300, False, 1_004), ("recent", 120, 400, True, 1_004)]  # failing first
    decisions = artifacts.report["decisions"]
    assert [(d["window"], d["verdict"]) for d in decisions] == [(0, "pass"), (1, "fail")]
    timeline = [t["what"] for t in artifacts.report["timeline"]]
    assert f"FAILED {FAILED_WINDOW.reason}" in timeline  # passes stay in decisions
    assert not any(PASSED_WINDOW.reason in line for line in timeline)
    assert "FAILED: app: p95" in timeline


def test_terminal_shows_window_verdicts_by_their_reason_styled_by_verdict():
    failed, passed = envelopes(FAILED_WINDOW, PASSED_WINDOW)
    guard = envelopes(WindowJudged(step="stage1:hold", probe="db", index=0, verdict="fail", guard=True, reason="g"))[0]
    unsure = envelopes(WindowJudged(step="stage1:hold", probe="db", index=0, verdict="inconclusive", reason="u"))[0]

    assert describe(failed) == ("red", FAILED_WINDOW.reason)
    assert describe(passed)[0] == "dim"
    assert describe(guard)[0] == "bold red" and describe(unsure)[0] == "yellow"
