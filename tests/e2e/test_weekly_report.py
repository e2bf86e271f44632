"""The weekly performance report from real runs: `golive run` twice (one rolls back), then `golive report --weekly`."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.builders import skeleton_plan
from tests.harness import run_cli

pytestmark = pytest.mark.e2e


def slow_stage_2(plan: dict) -> None:
    plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
    plan["canary"]["stages"][1]["checks"] = [{"probe": "slow_query", "thresholds": {"p95_ms": 20}}]


def wait_for_file(path, patience_s: float = 30.0) -> bool:
    deadline = time.monotonic() + patience_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


@pytest.mark.report_pages
def test_weekly_report_counts_real_runs_rollbacks_and_p95_per_probe(services, settings, process_env, tmp_path):
    (tmp_path / "good").mkdir(), (tmp_path / "bad").mkdir()
    good = run_cli("run", str(skeleton_plan(tmp_path / "good")), "--run-id", "run-week-ok",
                   "--deploy-id", "dpl_1", "--previous-deploy-id", "dpl_0", env=process_env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run_cli("run", str(skeleton_plan(tmp_path / "bad", edit=slow_stage_2)), "--run-id", "run-week-bad",
                  "--deploy-id", "dpl_2", "--previous-deploy-id", "dpl_1", env=process_env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    # the rolled-back run's report shows its numbers as a chart, in the HTML page too
    folder = settings.artifacts_dir / "run-week-bad"
    assert wait_for_file(folder / "report.html")  # written just after run_finished, after the other files
    assert (folder / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (folder / "report.html").read_text()

    out = tmp_path / "weekly"
    result = run_cli("report", "--weekly", "--out", str(out), env=process_env)  # the last 7 days
    assert result.returncode == 0, result.stderr
    [path] = out.glob("weekly_performance_report_*.json")
    report = json.loads(path.read_text())
    assert path.stem == f"weekly_performance_report_{report['week']}" and re.fullmatch(r"\d{6}", report["week"])
    assert [r["run_id"] for r in report["runs"]] == ["run-week-ok", "run-week-bad"]
    assert report["outcomes"]["succeeded"] == 1 and report["outcomes"]["rolled_back"] == 1
    assert report["rollbacks"]["by_cause"] == {"threshold": 1}
    [(step, count)] = report["rollbacks"]["by_step"].items()
    assert step.startswith("stage2:") and count == 1  # stage 2's check (its name depends on how holds run)
    assert report["p95_trends"]["slow_query"]["runs"][0]["p95_ms"] > 20
    assert len(report["p95_trends"]["stripe_recent"]["runs"]) == 2
    assert all(r["duration_s"] > 0 for r in report["runs"])
    assert "| run-week-bad |" in path.with_suffix(".md").read_text()
