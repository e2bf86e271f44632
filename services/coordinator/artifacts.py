"""Lock-in artifacts, built from a run's events (pure) and written under ``<artifacts>/<run>/`` (the shell).

- ``prod_performance_validation.json``: the runbook's validation file. ``validation_metadata.overall_passed``
  plus every check with its value, threshold, verdict and the samples behind it.
- ``report.md`` and ``report.json``: timeline, phase durations, decisions with their numbers, final traffic.
- ``badge-p95.svg``, ``badge-error-rate.svg``, ``badge-uptime.svg``: the runbook's status badges.
- ``chart.png`` (chart.py: p95 and error rate over time per deployment, stages, thresholds, rollback) and
  ``report.html`` (report_html.py: the report as one page with the chart embedded).

Everything here is a function of the events, so `golive report RUN` rebuilds the same files from the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anybadge

from services.coordinator.chart import chart_data, render_chart
from services.coordinator.report_html import render_html
from shared.envelope import Envelope
from shared.events import (
    CompensationStarted,
    MigrationsApplied,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    RunStarted,
    StageJudged,
    StepFailed,
    TrafficRolledBack,
    TrafficShifted,
    WindowJudged,
)
from shared.ids import check_id
from shared.judge import SHOWN


@dataclass(frozen=True)
class Artifacts:
    validation: dict
    report: dict
    markdown: str
    badges: dict[str, str]  # file name -> SVG
    chart: bytes | None = None  # chart.png
    html: str = ""  # report.html


def build_artifacts(events: list[Envelope], chart: bool = True) -> Artifacts:
    """Every artifact of one run, from its events in stream order; ``chart=False`` leaves out chart.png and
    report.html (drawing takes a few hundred ms: the coordinator writes the other files first)."""
    started = next((e for e in events if isinstance(e.data, RunStarted)), None)
    if started is None:
        raise ValueError("no run_started event: not a run's events")
    # the last one: `golive retry` ends a needs_human run a second time
    finished = next((e for e in reversed(events) if isinstance(e.data, RunFinished)), None)
    checks = _checks(events)
    validation = {
        "validation_metadata": {
            "run_id": started.runid,
            "plan": started.data.plan_name,
            "deployment_id": started.data.deploy_id,
            "previous_deployment_id": started.data.previous_deploy_id,
            "outcome": finished.data.outcome if finished else "running",
            "overall_passed": bool(finished and finished.data.outcome == "succeeded" and all(c["passed"] for c in checks)),
            "generated_at": (finished or events[-1]).time.isoformat(),
        },
        "checks": checks,
    }
    report = {
        "run_id": started.runid,
        "plan": started.data.plan_name,
        "deployment_id": started.data.deploy_id,
        "previous_deployment_id": started.data.previous_deploy_id,
        "started_at": started.time.isoformat(),
        "outcome": finished.data.outcome if finished else "running",
        "reason": finished.data.reason if finished else "",
        "duration_s": round(finished.data.duration_s, 1) if finished else None,
        "left_to_undo": finished.data.left_to_undo if finished else [],
        "final_traffic": _final_traffic(events),
        "phases": _phase_durations(events, finished.time if finished else events[-1].time),
        "timeline": [{"time": e.time.isoformat(), "source": e.source.rsplit("/", 1)[-1], "what": line}
                     for e in events if (line := _line(e))],
        # the coordinator's verdict on every window of a stage hold, with its reason and numbers
        "decisions": [{"time": e.time.isoformat(), "step": e.data.step, "probe": e.data.probe, "window": e.data.index,
                       "verdict": e.data.verdict, "guard": e.data.guard, "reason": e.data.reason}
                      for e in events if isinstance(e.data, WindowJudged)],
    }
    markdown = _markdown(report, checks)
    if not chart:
        return Artifacts(validation, report, markdown, _badges(checks))
    png = render_chart(chart_data(events))
    markdown = markdown.replace("\n## Phases", "\n![p95 and error rate over time](chart.png)\n\n## Phases", 1)
    return Artifacts(validation, report, markdown, _badges(checks), png, render_html(report, checks, png))


class OutsideArtifacts(ValueError):
    """A run's artifacts folder that would not be inside the artifacts folder."""


def run_directory(artifacts_dir: Path, run_id: str) -> Path:
    """``<artifacts_dir>/<run_id>``, the folder a run's artifacts go to. InvalidId for what is not a run id
    (``../x``, ``/tmp/x``); OutsideArtifacts if the folder would resolve outside ``artifacts_dir`` (a symlink)."""
    directory = artifacts_dir / check_id(run_id)
    if not directory.resolve().is_relative_to(artifacts_dir.resolve()):
        raise OutsideArtifacts(f"the artifacts of run {run_id} would go to {directory.resolve()}, outside "
                               f"{artifacts_dir.resolve()}; nothing written")
    return directory


def write_artifacts(artifacts: Artifacts, directory: Path) -> list[Path]:
    """Write the files (replacing older ones of the same run); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "prod_performance_validation.json": json.dumps(artifacts.validation, indent=2),
        "report.json": json.dumps(artifacts.report, indent=2),
        "report.md": artifacts.markdown,
        **artifacts.badges,
    }
    if artifacts.html:
        files["report.html"] = artifacts.html
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    if artifacts.chart:
        (path := directory / "chart.png").write_bytes(artifacts.chart)
        written.append(path)
    return written


def write_report_pages(events_json: list[bytes], directory: str) -> list[str]:
    """Every artifact including chart.png and report.html, from the events as JSON: the entry point of the
    coordinator's drawing process (matplotlib holds the GIL for hundreds of ms: never in the deciding one)."""
    import shared.commands  # noqa: F401  (a fresh process: register the message types before parsing)
    from shared.envelope import parse_envelope

    events = [parse_envelope(raw) for raw in events_json]
    return [str(path) for path in write_artifacts(build_artifacts(events), Path(directory))]


# --- the pieces ---------------------------------------------------------------------------------


def _checks(events: list[Envelope]) -> list[dict]:
    checks = []
    for e in events:
        # a stage hold or final validation answers with ProbesCompleted: each of its results is a check
        results = e.data.results if isinstance(e.data, ProbesCompleted) else [e.data] if isinstance(e.data, ProbeCompleted) else []
        for result in results:
            for verdict in result.verdicts:
                checks.append({
                    "name": f"{result.label or 'probe'}: {result.probe} {verdict.metric}",
                    "probe": result.probe, "stage": result.label, "metric": verdict.metric,
                    "value": round(verdict.observed, 3), "threshold": verdict.limit, "passed": verdict.passed,
                    "samples": result.count + result.errors, "measured_at": e.time.isoformat(),
                })
    return checks


def _final_traffic(events: list[Envelope]) -> dict:
    final: dict = {}
    for e in events:
        if isinstance(e.data, TrafficShifted):
            final = {"canary": e.data.canary, "canary_weight": e.data.verified_weight, "provider": e.data.provider}
        elif isinstance(e.data, TrafficRolledBack):
            final = {"canary": e.data.canary, "canary_weight": e.data.verified_weight, "provider": e.data.provider,
                     "rolled_back_to": e.data.to}
    return final


def _phase_durations(events: list[Envelope], end: datetime) -> list[dict]:
    marks = [(e.time, e.data.phase) for e in events if isinstance(e.data, PhaseStarted)]
    marks += [(e.time, "compensating") for e in events if isinstance(e.data, CompensationStarted)][:1]
    marks.sort()
    phases: list[dict] = []
    for i, (at, phase) in enumerate(marks):
        if phases and phases[-1]["phase"] == phase:
            continue
        phases.append({"phase": phase, "started_at": at.isoformat()})
    for i, phase in enumerate(phases):
        until = datetime.fromisoformat(phases[i + 1]["started_at"]) if i + 1 < len(phases) else end
        phase["seconds"] = round((until - datetime.fromisoformat(phase["started_at"])).total_seconds(), 1)
    return phases


def _line(e: Envelope) -> str:
    d = e.data
    if isinstance(d, PhaseStarted):
        return f"{d.step}: {d.detail}"
    if isinstance(d, WindowJudged) and d.verdict != "pass":  # passing windows are in report.json's decisions
        return d.reason
    if isinstance(d, ProbesCompleted | ProbeCompleted):
        return f"{SHOWN[d.finding]}: {d.summary}"
    if isinstance(d, TrafficShifted):
        return f"traffic {d.weight}% to {d.canary} (read back {d.verified_weight}%)"
    if isinstance(d, TrafficRolledBack):
        return f"traffic rolled back to {d.to or 'stable'} (canary read back {d.verified_weight}%)"
    if isinstance(d, MigrationsApplied):
        return "migrations: " + ", ".join(f"{r.name} {r.action} in {r.seconds:.2f}s" for r in d.results)
    if isinstance(d, StageJudged):
        return f"stage {d.stage} ({d.weight}%) {'passed' if d.verdict == 'pass' else 'FAILED'}: {d.reason}"
    if isinstance(d, StepFailed):
        return f"FAILED {d.step}: {d.reason}"
    if isinstance(d, CompensationStarted):
        return f"undo {d.undoes}"
    if isinstance(d, RunFinished):
        return f"run {d.outcome}: {d.reason}"
    return ""


def _markdown(report: dict, checks: list[dict]) -> str:
    lines = [
        f"# Go-live report: {report['plan']}",
        "",
        f"- run: `{report['run_id']}`",
        f"- deployment: `{report['deployment_id']}` (previous `{report['previous_deployment_id']}`)",
        f"- outcome: **{report['outcome']}**" + (f": {report['reason']}" if report["reason"] else ""),
        f"- started: {report['started_at']}; duration: {report['duration_s']} s",
    ]
    if report["left_to_undo"]:
        lines.append(f"- left to undo by hand: {', '.join(report['left_to_undo'])}")
    if traffic := report["final_traffic"]:
        lines.append(f"- final traffic: {traffic.get('canary_weight')}% to `{traffic.get('canary')}` via {traffic.get('provider')}")
    lines += ["", "## Phases", "", "| phase | started | seconds |", "|---|---|---|"]
    lines += [f"| {p['phase']} | {p['started_at']} | {p['seconds']} |" for p in report["phases"]]
    lines += ["", "## Checks", "", "| check | value | threshold | verdict | samples |", "|---|---|---|---|---|"]
    lines += [f"| {c['name']} | {c['value']} | {c['threshold']} | {'pass' if c['passed'] else 'FAIL'} | {c['samples']} |"
              for c in checks]
    lines += ["", "## Timeline", "", "| time | source | what |", "|---|---|---|"]
    lines += [f"| {t['time']} | {t['source']} | {t['what'].replace('|', '/')} |" for t in report["timeline"]]
    return "\n".join(lines) + "\n"


def _badges(checks: list[dict]) -> dict[str, str]:
    p95 = max((c["value"] for c in checks if c["metric"] == "p95_ms"), default=None)
    p95_ok = all(c["passed"] for c in checks if c["metric"] == "p95_ms")
    rates = [c["value"] for c in checks if c["metric"] == "error_rate_pct"]
    error_rate = max(rates, default=None)
    rates_ok = all(c["passed"] for c in checks if c["metric"] == "error_rate_pct")
    uptime = 100.0 - (sum(rates) / len(rates)) if rates else None
    return {
        "badge-p95.svg": _badge("p95", f"{p95:.0f} ms" if p95 is not None else "n/a", p95 is None or p95_ok),
        "badge-error-rate.svg": _badge("error rate", f"{error_rate:.2f}%" if error_rate is not None else "n/a",
                                       error_rate is None or rates_ok),
        "badge-uptime.svg": _badge("uptime", f"{uptime:.2f}%" if uptime is not None else "n/a", uptime is None or uptime >= 99.9),
    }


def _badge(label: str, value: str, good: bool) -> str:
    return anybadge.Badge(label, value, default_color="green" if good else "red").badge_svg_text
