"""The deployment report's chart and HTML page, from synthetic runs (no NATS, no services)."""

from __future__ import annotations

import re

from services.coordinator.artifacts import build_artifacts, write_artifacts
from services.coordinator.chart import chart_data, render_chart
from tests.unit.report_runs import RunBuilder, rolled_back_run

PNG = b"\x89PNG\r\n\x1a\n"


def test_chart_has_a_line_per_probe_and_deployment_from_its_windows():
    data = chart_data(rolled_back_run())
    assert data.source == "windows"
    lines = {s.name: s for s in data.series}
    assert set(lines) == {"recent (dpl_new)", "recent (dpl_old)"}
    canary = lines["recent (dpl_new)"].points
    assert [p.p95_ms for p in canary][-1] == 570
    assert canary[-1].error_rate_pct == 3 / 103 * 100
    assert canary[0].at_s == 15


def test_chart_marks_stages_thresholds_and_the_rollback_moment():
    data = chart_data(rolled_back_run())
    assert data.stages == ((5.0, 10), (66.0, 50))
    assert data.rollback_s == 110
    assert data.rollback_reason == "p95 512 ms > 300 ms"
    p95 = [(t.value, t.from_s, t.to_s) for t in data.thresholds if t.metric == "p95_ms"]
    # stage 2's limit applies from its shift until the rollback, not to the end of the run
    assert p95 == [(400, 5.0, 66.0), (300, 66.0, 110.0)]
    assert [t.value for t in data.thresholds if t.metric == "error_rate_pct"] == [1, 1.5]


def test_a_run_without_windows_is_drawn_from_its_check_results():
    run = RunBuilder()
    run.shift(1, 1, 10)
    run.result(3, 12.5)
    data = chart_data(run.finish(4, "succeeded"))
    assert data.source == "results"
    assert [(s.name, [p.p95_ms for p in s.points]) for s in data.series] == [("recent (dpl_new)", [12.5])]
    assert render_chart(data).startswith(PNG)


def test_a_run_with_no_measurement_still_gets_a_chart():
    data = chart_data(RunBuilder().finish(1, "rolled_back", "aborted"))
    assert data.empty and data.rollback_s is None
    assert render_chart(data).startswith(PNG)


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
