"""The runbook's weekly performance report, aggregated from the summaries of the runs (shared/run_summary.py).

``weekly_report(runs, since, until)`` is pure: it keeps the runs that started in ``[since, until)`` (their
summaries, read from the run history, never the event stream), and returns runs with outcome and duration, counts
by outcome, rollbacks by cause and by the step that failed, and each probe's p95 per run in start order (its trend
over the week).
``weekly_markdown(report)`` renders it. `golive report --weekly` writes both as
``weekly_performance_report_<YYYYWW>.json`` and ``.md`` (the runbook's name: year and week of the last day).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from golive.services.coordinator.markdown import table
from golive.shared.run_summary import RunSummary
from golive.shared.secrets import redact


def week_label(until: datetime) -> str:
    """``202646``: year and week of the period's last day, as the runbook names the file (``date +%Y%W``:
    weeks start on Monday)."""
    return (until.astimezone(UTC) - timedelta(microseconds=1)).strftime("%Y%W")


def report_file_stem(until: datetime) -> str:
    return f"weekly_performance_report_{week_label(until)}"


def weekly_report(runs: Iterable[RunSummary], since: datetime, until: datetime) -> dict:
    """Every run that started in ``[since, until)``, aggregated. ``runs``: run summaries (shared/run_summary.py),
    as the run history keeps them."""
    kept = sorted((r for r in runs if since <= r.started_at < until), key=lambda r: r.started_at)
    outcomes = Counter(r.outcome for r in kept)
    durations = [r.duration_s for r in kept if r.duration_s is not None]
    rollbacks = [r for r in kept if r.rollback]
    ended = sum(outcomes[o] for o in ("succeeded", "rolled_back", "needs_human"))
    return {
        "week": week_label(until),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "runs_total": len(kept),
        "outcomes": {o: outcomes[o] for o in ("succeeded", "rolled_back", "needs_human", "running")},
        "success_rate_pct": round(100.0 * outcomes["succeeded"] / ended, 1) if ended else None,
        "duration_s": {
            "median": round(statistics.median(durations), 1) if durations else None,
            "mean": round(statistics.fmean(durations), 1) if durations else None,
            "max": round(max(durations), 1) if durations else None,
        },
        "rollbacks": {
            "total": len(rollbacks),
            "by_cause": dict(Counter(r.rollback.cause for r in rollbacks if r.rollback).most_common()),
            "by_step": dict(Counter(r.rollback.step for r in rollbacks if r.rollback).most_common()),
            "list": [{"run_id": r.run_id, **r.rollback.model_dump()} for r in rollbacks if r.rollback],
        },
        "post_deploy_breaches": sum(r.post_deploy_breaches for r in kept),
        "p95_trends": _trends(kept),
        "runs": [_run_line(r) for r in kept],
    }


def _run_line(run: RunSummary) -> dict:
    """A run as the report lists it (the fields and names the report has always had)."""
    return {
        "run_id": run.run_id,
        "plan": run.plan,
        "deployment_id": run.deploy_id,
        "started_at": run.started_at.isoformat(),
        "outcome": run.outcome,
        "duration_s": run.duration_s,
        "reason": run.reason if run.outcome != "running" else "",
        "rollback": run.rollback.model_dump() if run.rollback else None,
        "post_deploy_breaches": run.post_deploy_breaches,
        "p95_ms": dict(run.p95_ms),
    }


def _trends(runs: list[RunSummary]) -> dict[str, dict]:
    """Per probe: its worst p95 in each run (start order), and the change from the first run to the last."""
    trends: dict[str, dict] = {}
    for r in runs:
        for probe, p95 in r.p95_ms.items():
            trends.setdefault(probe, {"runs": []})["runs"].append(
                {"run_id": r.run_id, "started_at": r.started_at.isoformat(), "p95_ms": p95})
    for trend in trends.values():
        values = [p["p95_ms"] for p in trend["runs"]]
        trend["first_ms"], trend["last_ms"], trend["max_ms"] = values[0], values[-1], max(values)
        trend["median_ms"] = round(statistics.median(values), 2)
        trend["change_ms"] = round(values[-1] - values[0], 2)
    return dict(sorted(trends.items()))


def weekly_markdown(report: dict) -> str:
    """The weekly report as Markdown: summary, rollbacks, p95 trends, every run."""
    d, o = report["duration_s"], report["outcomes"]
    rate = f"{report['success_rate_pct']}%" if report["success_rate_pct"] is not None else "n/a"
    lines = [
        f"# Weekly performance report {report['week'][:4]}-W{report['week'][4:]}",
        "",
        f"{report['since']} to {report['until']}",
        "",
        f"- runs: **{report['runs_total']}**: {o['succeeded']} succeeded, {o['rolled_back']} rolled back, "
        f"{o['needs_human']} needed a human, {o['running']} still running",
        f"- success rate: {rate}",
        f"- duration: median {_s(d['median'])}, mean {_s(d['mean'])}, longest {_s(d['max'])}",
        f"- post-deploy breaches (after a run succeeded): {report['post_deploy_breaches']}",
        "",
        "## Rollbacks",
        "",
    ]
    rb = report["rollbacks"]
    if not rb["total"]:
        lines.append("None this week.")
    else:
        lines.append("By cause: " + ", ".join(f"{c} {n}" for c, n in rb["by_cause"].items()) + "; "
                     "by step: " + ", ".join(f"{s} {n}" for s, n in rb["by_step"].items()))
        lines += ["", *table(["run", "step", "cause", "reason"],
                             ([r["run_id"], r["step"], r["cause"], r["reason"]] for r in rb["list"]))]
    lines += ["", "## p95 trends (worst p95 per run)", ""]
    if not report["p95_trends"]:
        lines.append("No probe results this week.")
    else:
        lines += table(["probe", "runs", "first", "last", "change", "median", "worst"],
                       ([probe, len(t["runs"]), f"{t['first_ms']:g}", f"{t['last_ms']:g}", f"{t['change_ms']:+g}",
                         f"{t['median_ms']:g}", f"{t['max_ms']:g}"] for probe, t in report["p95_trends"].items()))
    lines += ["", "## Runs", "", *table(
        ["started", "run", "plan", "deployment", "outcome", "duration", "reason"],
        ([r["started_at"], r["run_id"], r["plan"], r["deployment_id"], r["outcome"], _s(r["duration_s"]), r["reason"]]
         for r in report["runs"]))]
    return "\n".join(lines) + "\n"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:g} s"


def write_weekly(report: dict, directory: Path) -> list[Path]:
    """Write ``weekly_performance_report_<YYYYWW>.json`` and ``.md`` into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"weekly_performance_report_{report['week']}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    # reasons quote what services reported (already redacted): scrubbed once more, as these files travel
    json_path.write_text(redact(json.dumps(report, indent=2)))
    md_path.write_text(redact(weekly_markdown(report)))
    return [json_path, md_path]
