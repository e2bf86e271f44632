"""A run's validation file, report.json and report.md, rendered from its story (shared/story/): what happened, why
with the numbers, every stage's windows and checks (failing ones first), who did what, the timings, what was undone
and what was kept. Pure: the same events give the same files, so `golive report RUN` rebuilds them.
"""

from __future__ import annotations

from datetime import datetime

from golive.services.coordinator.markdown import table
from golive.shared.judge import number, reading_words
from golive.shared.story import CheckStory, RunStory, StageStory, WindowStory

STAGE_MARK = {"passed": "✓", "failed": "✗"}  # a stage not reached, or still going: "·"
_OUTCOME_WORDS = {"succeeded": "live", "rolled_back": "rolled back", "failed": "failed", "needs_human": "needs a human",
                  "rolling_back": "rolling back", "running": "running", "starting": "starting"}


def outcome_words(story: RunStory) -> str:
    """The run's outcome in a word or two, as every artifact says it: ``live``, ``rolled back``, ``paused``..."""
    if story.outcome == "running" and story.health == "Paused":
        return "paused"
    return _OUTCOME_WORDS[story.outcome]


# --- prod_performance_validation.json -------------------------------------------------------------------------------


def validation_file(story: RunStory) -> dict:
    """The runbook's validation file: ``validation_metadata`` (outcome, reason, overall_passed, the names of what
    failed) and ``checks``: every number of every check and judged window against its limit, failing ones first.

    overall_passed: the run went live and every check passed. A failed window that the plan's analysis tolerated
    (below failure_limit) is listed in ``failed`` all the same."""
    rows = _rows(story)
    failed = [r["name"] for r in rows if not r["passed"]]
    checks_passed = all(r["passed"] for r in rows if r["kind"] == "check")
    return {
        "validation_metadata": {
            "run_id": story.run_id,
            "plan": story.plan_name,
            "deployment_id": story.deploy_id,
            "previous_deployment_id": story.previous_deploy_id,
            "outcome": story.ended or "running",
            "health": story.health,
            "reason": story.reason,
            "overall_passed": story.outcome == "succeeded" and checks_passed,
            "failed": failed,
            "generated_at": _iso(story.finished_at or story.last_event_at),
        },
        "checks": rows,
    }


def _rows(story: RunStory) -> list[dict]:
    """Every check's numbers and every judged window's, in the order measured; then the failing ones moved first."""
    rows: list[tuple[datetime, dict]] = [(c.at, _check_row(c)) for c in story.checks]
    for stage in story.stages:
        rows += [(w.at, row) for w in stage.judged_windows for row in _window_rows(stage, w)]
    rows.sort(key=lambda pair: pair[0])
    ordered = [row for _, row in rows]
    return [r for r in ordered if not r["passed"]] + [r for r in ordered if r["passed"]]


def _check_row(c: CheckStory) -> dict:
    row = {"name": c.name, "kind": "check", "stage": c.where, "probe": c.probe, "metric": c.metric, "value": c.value,
           "threshold": c.limit, "passed": c.passed, "verdict": "pass" if c.passed else "fail", "samples": c.samples,
           "measured_at": c.at.isoformat(), "words": c.words()}
    if c.stopped:
        row["stopped"] = c.stopped
    return row


def _window_rows(stage: StageStory, w: WindowStory) -> list[dict]:
    """One row per number a window was judged on; a window judged on none: one row with its verdict."""
    base = {"kind": "window", "stage": stage.label, "probe": w.probe, "window": w.index, "samples": w.requests,
            "measured_at": w.at.isoformat(), "guard": w.guard, "reason": w.reason}
    rows = []
    for r in w.readings:
        verdict = "fail" if r.over else "inconclusive" if w.verdict == "inconclusive" else "pass"
        rows.append({"name": f"{stage.label}: {w.probe} window {w.index} {r.metric}", **base, "metric": r.metric,
                     "value": None if r.observed is None else round(r.observed, 3), "threshold": r.limit,
                     "passed": verdict != "fail", "verdict": verdict, "words": r.words()})
    if not rows or (w.verdict == "fail" and not any(r.over for r in w.readings)):
        # failed on what the readings do not show (a limit the window carries no number for): its verdict stands
        rows.append({"name": f"{stage.label}: {w.probe} window {w.index}", **base, "metric": None, "value": None,
                     "threshold": None, "passed": w.verdict != "fail", "verdict": w.verdict, "words": w.reason})
    return rows


# --- report.json ----------------------------------------------------------------------------------------------------


def report_json(story: RunStory) -> dict:
    """The report as data: the story's facts, every check and window (as the validation file), the timeline."""
    traffic = story.traffic
    final_traffic: dict = {}
    if traffic.weight_read_back is not None and traffic.provider:
        final_traffic = {"canary": traffic.canary, "canary_weight": traffic.weight_read_back, "provider": traffic.provider}
        if traffic.rolled_back_to is not None:
            final_traffic["rolled_back_to"] = traffic.rolled_back_to
    end = story.finished_at or story.last_event_at
    return {
        "run_id": story.run_id,
        "plan": story.plan_name,
        "deployment_id": story.deploy_id,
        "previous_deployment_id": story.previous_deploy_id,
        "started_at": _iso(story.started_at),
        "finished_at": _iso(story.finished_at),
        "outcome": story.ended or "running",
        "state": story.outcome,  # the outcome as the story reads it: also rolling_back, and failed (nothing to undo)
        "outcome_words": outcome_words(story),
        "health": story.health,
        "reason": story.reason,
        "coordinator_reason": story.finished_reason,  # run_finished's words, as recorded
        "step": story.step,
        "step_of": story.step_of,
        "duration_s": round(story.duration_s, 1) if story.duration_s is not None else None,
        "breach_at": _iso(story.breach_at),
        "breach_to_rollback_s": _round(story.breach_to_rollback_s),
        "rollback_s": _round(story.rollback_s),
        "left_to_undo": list(story.left_to_undo),
        "undone": [{"undoes": u.undoes, "what": u.what, "started_at": _iso(u.started_at), "done_at": _iso(u.done_at)}
                   for u in story.undone],
        "kept": list(story.kept),
        "drop_indexes": story.drop_indexes,
        "final_traffic": final_traffic,
        "guard_values": dict(story.guard_values),
        "stages": [_stage(story, s) for s in story.stages],
        "operator_actions": [{"kind": a.kind, "by": a.by, "why": a.why, "gate": a.gate, "at": a.at.isoformat(),
                              "words": a.words()} for a in story.actions],
        "checks": _rows(story),
        "phases": _phases(story, end),
        "timeline": [{"time": m.at.isoformat(), "source": m.source, "what": m.text, "failed": m.failed}
                     for m in story.timeline],
        # the coordinator's verdict on every window of every stage hold, with its reason and numbers
        "decisions": [{"time": w.at.isoformat(), "stage": s.label, "probe": w.probe, "window": w.index,
                       "verdict": w.verdict, "guard": w.guard, "reason": w.reason}
                      for s in story.stages for w in s.judged_windows],
    }


def _stage(story: RunStory, s: StageStory) -> dict:
    limits = story.analysis
    return {
        "stage": s.number, "label": s.label, "weight": s.weight, "hold_s": s.hold_s, "state": s.state,
        "verdict": s.verdict, "weight_set": s.weight_set, "weight_read_back": s.weight_read_back,
        "windows_judged": len(s.judged_windows), "failed_windows": s.failed_windows,
        "inconclusive_windows": s.inconclusive_windows,
        "failure_limit": limits.failure_limit if limits else None,
        "consecutive_failure_limit": limits.consecutive_failure_limit if limits else None,
        "limits": {probe: dict(metrics) for probe, metrics in s.limits.items()},
        "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at),
    }


def _phases(story: RunStory, end: datetime | None) -> list[dict]:
    phases = []
    for i, span in enumerate(story.phases):
        until = story.phases[i + 1].started_at if i + 1 < len(story.phases) else end
        seconds = round((until - span.started_at).total_seconds(), 1) if until else None
        phases.append({"phase": span.phase, "started_at": span.started_at.isoformat(), "seconds": seconds})
    return phases


# --- report.md ------------------------------------------------------------------------------------------------------


def stage_strip(story: RunStory) -> str:
    """``10% ✓ → 50% ✗ → 100% ·``: each stage's weight and how it went."""
    return " → ".join(f"{s.weight}% {STAGE_MARK.get(s.state, '·')}" for s in story.stages)


def report_markdown(story: RunStory, report: dict) -> str:
    """report.md: the outcome and why first, then the facts a lead asks for, then the tables."""
    outcome = outcome_words(story).upper()
    lines = [f"# Go-live report: {story.plan_name}", "", f"**{outcome}**" + (f": {story.reason}" if story.reason else ""),
             "", f"- run: `{story.run_id}`; health: {story.health}; {story.step_of} ({story.step or '-'})",
             f"- deployment: `{story.deploy_id}` (previous `{story.previous_deploy_id}`)",
             f"- started: {report['started_at']}; duration: {report['duration_s']} s"]
    if story.breach_to_rollback_s is not None:
        lines.append(f"- breach to rollback: {story.breach_to_rollback_s:.1f} s (first failed window to traffic "
                     f"read back on {story.traffic.rolled_back_to or 'stable'})")
    if story.rollback_s is not None and story.undone:
        lines.append(f"- rollback took: {story.rollback_s:.1f} s")
    if story.stages:
        lines.append(f"- stages: {stage_strip(story)}")
    if story.undone:
        lines.append("- undone: " + "; ".join(u.what for u in story.undone))
    if story.kept:
        lines.append(f"- kept: {', '.join(story.kept)} (rollback.drop_indexes is false)")
    if story.left_to_undo:
        lines.append(f"- left to undo by hand: {', '.join(story.left_to_undo)}")
    if traffic := report["final_traffic"]:
        lines.append(f"- final traffic: {traffic['canary_weight']}% to `{traffic['canary']}` via {traffic['provider']}")
    if story.guard_values:
        lines.append("- last guard values: " + ", ".join(reading_words(k, v, story.guard_limits[k]) if k in story.guard_limits
                                                         else f"{k} {_number(v)}" for k, v in story.guard_values.items()))
    if story.actions:
        lines += ["", "## Operator actions", "", *table(
            ["time", "who", "what", "why / evidence"],
            ([f"{a.at:%H:%M:%S}", a.by, a.words().split(" (", 1)[0], a.why] for a in story.actions))]
    lines += ["", "## Stages", "", *table(
        ["stage", "verdict", "windows judged", "failed", "inconclusive", "limits"],
        ([s["label"], s["verdict"] or s["state"], s["windows_judged"], s["failed_windows"], s["inconclusive_windows"],
          f"failure_limit {s['failure_limit']}, consecutive {s['consecutive_failure_limit']}"
          if s["failure_limit"] is not None else "totals only"] for s in report["stages"]))]
    lines += ["", "## Checks (failing first)", "", *table(
        ["check", "value", "threshold", "verdict", "samples"],
        ([c["name"], _number(c["value"]), _number(c["threshold"]), "FAIL" if c["verdict"] == "fail" else c["verdict"],
          f"{c['samples']:,}"] for c in report["checks"]))]
    lines += ["", "## Phases", "", *table(["phase", "started", "seconds"],
                                          ([p["phase"], p["started_at"], p["seconds"]] for p in report["phases"]))]
    lines += ["", "## Timeline", "", *table(["time", "source", "what"],
                                            ([t["time"], t["source"], t["what"]] for t in report["timeline"]))]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "-" if value is None else number(value)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _round(seconds: float | None) -> float | None:
    return round(seconds, 3) if seconds is not None else None
