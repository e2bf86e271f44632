"""Lock-in artifacts, built from a run's story (shared/story/, folded from its events; pure) and written under
``<artifacts>/<run>/`` (the shell).

- ``prod_performance_validation.json``: the runbook's validation file. ``validation_metadata`` (outcome, reason with
  its numbers, ``overall_passed``, ``failed``: what failed) plus every check and judged window of every stage with its
  value, threshold, verdict and the samples behind it, failing ones first (run_report.py).
- ``report.md`` and ``report.json``: outcome and why, stages, operator actions, timings (breach to rollback), what was
  undone and kept, checks, phases, timeline (run_report.py).
- ``badge-outcome.svg``, ``badge-p95.svg``, ``badge-error-rate.svg``, ``badge-uptime.svg``: the status badges
  (badges.py).
- ``chart.png`` (chart.py: p95 and error rate over time per deployment, stages, thresholds, rollback) and
  ``report.html`` (report_html.py: the report as one page with the chart embedded).

Everything here is a function of the events, so `golive report RUN` rebuilds the same files from the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from golive.services.coordinator.badges import badges
from golive.services.coordinator.chart import chart_data
from golive.services.coordinator.chart_drawing import render_chart
from golive.services.coordinator.report_html import render_html
from golive.services.coordinator.run_report import report_json, report_markdown, validation_file
from golive.shared.envelope import Envelope
from golive.shared.extras import has_extra, require_extra
from golive.shared.ids import check_id
from golive.shared.replace_file import replace_whole
from golive.shared.story import story_of


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
    report.html (drawing takes a few hundred ms: the coordinator writes the other files first).

    The chart, report.html and the badges are drawn with golive's ``reports`` extra: without it ``chart=True``
    raises MissingExtra (naming the extra), and ``chart=False`` gives the files without badges."""
    if chart:
        require_extra("reports", "a run's chart, report.html and badges")
    story = story_of(events)
    if story.started_at is None:
        raise ValueError("no run_started event: not a run's events")
    validation = validation_file(story)
    report = report_json(story)
    markdown = report_markdown(story, report)
    if not chart:
        return Artifacts(validation, report, markdown, badges(story) if has_extra("reports") else {})
    png = render_chart(chart_data(events))
    markdown = markdown.replace("\n## Phases", "\n![p95 and error rate over time](chart.png)\n\n## Phases", 1)
    shields = badges(story)
    return Artifacts(validation, report, markdown, shields, png, render_html(report, shields, png))


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
    """Write the files (replacing older ones of the same run); returns their paths. Each file is replaced whole
    (shared/replace_file.py): the drawing process rewrites them while readers may be reading."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes] = {
        "prod_performance_validation.json": json.dumps(artifacts.validation, indent=2),
        "report.json": json.dumps(artifacts.report, indent=2),
        "report.md": artifacts.markdown,
        **artifacts.badges,
    }
    if artifacts.html:
        files["report.html"] = artifacts.html
    if artifacts.chart:
        files["chart.png"] = artifacts.chart
    return [replace_whole(directory / name, content) for name, content in files.items()]


def write_report_pages(events_json: list[bytes], directory: str) -> list[str]:
    """Every artifact including chart.png and report.html, from the events as JSON: the entry point of the
    coordinator's drawing process (matplotlib holds the GIL for hundreds of ms: never in the deciding one)."""
    import golive.shared.commands  # noqa: F401  (a fresh process: register the message types before parsing)
    from golive.shared.envelope import parse_envelope

    events = [parse_envelope(raw) for raw in events_json]
    return [str(path) for path in write_artifacts(build_artifacts(events), Path(directory))]
