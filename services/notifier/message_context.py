"""What a message may say: the run context every template sees, in words, from the notifier's view of a run.

``run_context(view, envelope)`` is pure. Absent facts are empty, never missing, so templates stay simple; what
happened is said as it happened (traffic never moved, indexes kept or dropped, who paused or aborted), so a
template picks from these words rather than assume what usually happens.
"""

from __future__ import annotations

from typing import Any

from golive.services.notifier.run_view import RunView
from golive.shared.envelope import Envelope
from golive.shared.plan.canary import Stage
from golive.shared.plan.window import Window


def run_context(view: RunView, envelope: Envelope, stage_number: int | None = None) -> dict[str, Any]:
    """Every name a template may use. Absent facts are empty, never missing, so templates stay simple."""
    stages = view.stages
    number = stage_number if stage_number is not None else view.stage
    stage = None
    if 1 <= number <= len(stages):
        spec = stages[number - 1]
        checks = [r for r in view.results if r.stage == number]
        stage = {
            "number": number, "weight": spec.weight, "hold": spec.hold,
            "thresholds": [c.thresholds.model_dump(mode="json") for c in spec.checks],
            "checks": checks, "checks_text": "; ".join(r.text for r in checks) or "no checks",
        }
    failing = [r for r in view.results if r.step == view.failed_step and not r.passed]
    spec = view.notifications
    data = envelope.data
    return {
        "run_id": view.run_id,
        "plan_name": view.plan_name,
        "plan": view.plan.model_dump(mode="json"),  # as templates have always seen it: the plan as stored
        "environment": spec.environment,
        "maintenance_window": spec.maintenance_window or _plan_window(view.plan.window),
        "report_url": spec.report_url.replace("{run_id}", view.run_id),
        "deploy_id": view.deploy_id,
        "previous_deploy_id": view.previous_deploy_id or "",
        "phase": view.phase,
        "step": view.step,
        "detail": view.detail,
        "stage": stage,
        "stages_total": len(stages),
        "weights": [s.weight for s in stages],
        "progress": _progress(stages, number, view, passed=stage_number is not None),
        "results": list(view.results),
        "failed_step": view.failed_step,
        "failed_at": _failed_at(view),
        "failed_where": _failed_where(view),
        "failed_checks": failing,
        "reason": view.reason,
        "undone": list(view.undone),
        "outcome": view.outcome or "",
        "duration_s": view.duration_s,
        "duration": _duration(view.duration_s),
        "left_to_undo": list(view.left_to_undo),
        # what happened, in words (see the module's docstring): templates pick from these rather than assume
        "why": _why(view),
        "traffic_moved": view.shift_begun,
        "nothing_changed": _nothing_changed(view),
        "traffic_back": _traffic_back(view),
        "breach_to_rollback": _breach_to_rollback(view),
        "indexes": _indexes(view),
        "undone_text": _undone_text(view),
        "rollback_action": _rollback_action(view),
        "decided": _decided(view, number),
        "approvals": list(view.approvals),
        "approvals_text": "; ".join(view.approvals),
        "operator_actions": list(view.operator_actions),
        "operator_text": "; ".join(view.operator_actions),
        "event": {"id": envelope.id, "type": envelope.type, "time": envelope.time.isoformat(),
                  "data": data.model_dump(mode="json")},
    }


def _progress(stages: list[Stage], current: int, view: RunView, passed: bool = False) -> str:
    """``10% ✓ → 50% ✗ → 100%``: each stage as the coordinator judged it (StageJudged), the failed one crossed as
    soon as its step failed, the current one marked. Runs stored before stages were judged: ticked up to the
    current stage."""
    judged = dict(view.stage_verdicts)
    marks = []
    for n, stage in enumerate(stages, start=1):
        if n in judged:
            mark = "✓" if judged[n] == "pass" else "✗"
        elif view.compensating and view.failed_stage == n:
            mark = "✗"
        elif not judged and (view.outcome == "succeeded" or n < current or (passed and n == current)):
            mark = "✓"
        elif n == current and view.outcome is None and not view.compensating:
            mark = "…"
        else:
            mark = ""
        marks.append(f"{stage.weight}%{(' ' + mark) if mark else ''}")
    return " → ".join(marks)


def _why(view: RunView) -> str:
    """The reason without the failed step's name, nor its stage, in front (the messages say where it failed)."""
    if not view.failed_step:
        return view.reason
    return view.reason.removeprefix(f"{view.failed_step} failed: ").removeprefix(f"{_failed_where(view)}: ")


def _traffic_back(view: RunView) -> str:
    """The traffic rollback as read back, or why there is none."""
    back = view.traffic_back
    if back is None:
        return "" if view.shift_begun else "traffic never moved"
    if not back.changed:
        return f"traffic unchanged: this run never moved it ({back.canary} read back at {back.verified_weight}%)"
    return f"traffic back on {back.to or 'the previous deployment'}, {back.canary} read back at {back.verified_weight}%"


def _breach_to_rollback(view: RunView) -> str:
    """How long after the breach was first measured traffic was back (read back), e.g. ``1.2 s``: the story's
    figure, the one the reports give."""
    back = view.traffic_back
    if back is None or not back.changed or (seconds := view.story.breach_to_rollback_s) is None:
        return ""
    return _seconds(seconds)


def _migrate_unsure(view: RunView) -> bool:
    """The migrations began and never answered (they failed or timed out): some indexes may have been built."""
    return view.migrate_begun and not view.migrated


def _nothing_changed(view: RunView) -> bool:
    return not view.shift_begun and not view.built and not _migrate_unsure(view)


def _indexes(view: RunView) -> str:
    """What became of the indexes this run built: kept (and why), dropped, or still to drop."""
    unsure = _migrate_unsure(view)
    if not view.built and not unsure:
        return ""
    built = ", ".join(view.built) if view.built else "those built before the migrations failed"
    if not view.plan.rollback.drop_indexes:
        return f"kept {built} (rollback.drop_indexes: false)"
    if not view.reverted:
        return f"to drop: {built}"
    kept = [i for i in view.built if i not in view.dropped]
    dropped = f"dropped {', '.join(view.dropped)}" if view.dropped else "none dropped"
    return dropped + (f"; kept {', '.join(kept)}" if kept else "")


def _undone_text(view: RunView) -> str:
    """What a rolled-back run changed and undid: ``nothing changed``, or traffic and indexes as they were left."""
    if _nothing_changed(view):
        return "nothing changed"
    parts = []
    traffic = _traffic_back(view)
    if traffic:
        took = _breach_to_rollback(view)
        parts.append(traffic + (f", {took} after the breach was measured" if took else ""))
    if indexes := _indexes(view):
        parts.append(f"indexes {indexes}")
    return "; ".join(parts)


def _rollback_action(view: RunView) -> str:
    """What the rollback about to run will do (told when the step fails, before it runs)."""
    indexes = ""
    if view.built or _migrate_unsure(view):
        built = ", ".join(view.built) if view.built else "built before the migrations failed"
        indexes = (f"indexes {built} kept (rollback.drop_indexes: false)"
                   if not view.plan.rollback.drop_indexes else f"drop indexes {built}")
    if not view.shift_begun:
        return f"Nothing to roll back in traffic: it never moved{'; ' + indexes if indexes else ''}"
    previous = f" {view.previous_deploy_id}" if view.previous_deploy_id else ""
    return f"Rollback to previous deployment{previous}" + (f"; {indexes}" if indexes else "")


def _decided(view: RunView, number: int) -> str:
    """The numbers that decided: a failure's reason, or the checks of the stage that passed last."""
    if view.reason and view.outcome != "succeeded":
        return _why(view)
    passed = [n for n, verdict in view.stage_verdicts if verdict == "pass"] or ([number] if number else [])
    if not passed:
        return ""
    last = passed[-1]
    checks = [r for r in view.results if r.stage == last]
    weight = f" ({view.stages[last - 1].weight}%)" if last <= len(view.stages) else ""
    return f"stage {last}{weight}: " + ("; ".join(r.text for r in checks) or "no checks")


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else _duration(seconds)


def _failed_at(view: RunView) -> str:
    number = view.failed_stage
    if number and number <= len(view.stages):
        return f"stage {number} ({view.stages[number - 1].weight}%): {view.failed_step}"
    return view.failed_step


def _failed_where(view: RunView) -> str:
    """Where the run failed, as people read it: ``stage 2 (50%)``, or the step outside the canary."""
    number = view.failed_stage
    if number and number <= len(view.stages):
        return f"stage {number} ({view.stages[number - 1].weight}%)"
    return view.failed_step


def _duration(seconds: float) -> str:
    """The runbook's wording: ``45 minutes``; short runs in seconds."""
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    if seconds >= 60:
        return f"{seconds / 60:.1f} minutes"
    return "1 second" if round(seconds) == 1 else f"{seconds:.0f} seconds"


def _plan_window(plan_window: Window) -> str:
    """The plan's maintenance window as the runbook writes it (``Sun 02:00-04:00 UTC``), or "" without one."""
    window = plan_window.maintenance
    if window is None:
        return ""
    days = ",".join(d.capitalize() for d in window.days)
    return f"{days} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}"
