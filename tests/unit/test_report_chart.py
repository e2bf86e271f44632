"""The deployment report's HTML page with its chart, from synthetic runs (no NATS, no services); what the chart
shows is tests/unit/test_chart.py's."""

from __future__ import annotations

import re

from golive.services.coordinator.artifacts import build_artifacts, write_artifacts
from tests.unit.report_runs import RunBuilder, rolled_back_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_html_embeds_the_chart_and_escapes_what_it_shows(tmp_path):
    events = rolled_back_run()
    run = RunBuilder("run-x")
    run.rollback(2, reason="<script>alert(1)</script> p95 too high")
    artifacts = build_artifacts(run.finish(3, "rolled_back", "<b>bad</b>"))
    assert "<script>alert" not in artifacts.html and "&lt;script&gt;" in artifacts.html
    artifacts = build_artifacts(events)
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', artifacts.html)
    assert embedded and artifacts.chart and artifacts.chart.startswith(PNG)
    assert "ROLLED BACK" in artifacts.html and "stage 2 (50%)" in artifacts.html
    assert "![p95 and error rate over time](chart.png)" in artifacts.markdown
    names = {p.name for p in write_artifacts(artifacts, tmp_path)}
    assert {"chart.png", "report.html", "report.md", "report.json"} <= names
    assert (tmp_path / "chart.png").read_bytes() == artifacts.chart


def test_report_html_carries_no_credentials():
    run = RunBuilder("run-leaky")
    run.rollback(2, reason="connection to postgresql://golive:hunter2@db.internal/app failed")
    html = build_artifacts(run.finish(3, "rolled_back", "migrate failed")).html
    assert "hunter2" not in html and "postgresql://golive:***@db.internal/app" in html
