"""Nothing left behind: a coordinator killed after drawing a chart takes its chart worker with it (no orphan
processes holding matplotlib's memory), and a run that ended leaves the coordinator's memory and its per-run
metric series."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.builders import skeleton_plan
from tests.harness import run_cli

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            todo += list(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.report_pages
def test_ended_runs_leave_memory_and_a_killed_coordinator_leaves_no_chart_worker(services, process_env, settings,
                                                                               tmp_path):
    plan = skeleton_plan(tmp_path, hold="0.5s", smoke="0.5s")
    for run_id in ("left-1", "left-2"):
        result = run_cli("run", str(plan), "--run-id", run_id, "--deploy-id", f"dpl-{run_id}", env=process_env)
        assert result.returncode == 0, result.stdout + result.stderr

    metrics_url = f"http://127.0.0.1:{services.metrics_ports['coordinator']}/metrics"
    deadline = time.monotonic() + 60
    while not (settings.artifacts_dir / "left-2" / "chart.png").exists():  # drawn by the chart worker
        assert time.monotonic() < deadline, "no chart drawn"
        time.sleep(0.2)
    metrics = httpx.get(metrics_url).text
    assert "golive_coordinator_runs_in_memory 0.0" in metrics
    assert 'run_id="left-1"' not in metrics and 'run_id="left-2"' not in metrics  # per-run series removed
    assert 'golive_runs_total{outcome="succeeded"} 2.0' in metrics

    coordinator = services.procs["coordinator"]
    workers = _children(coordinator.pid)
    assert workers, "the chart worker should be running"
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(10)
    deadline = time.monotonic() + 30
    while alive := [pid for pid in workers if _alive(pid)]:
        assert time.monotonic() < deadline, f"orphaned after the coordinator's kill -9: {alive}"
        time.sleep(0.2)


def test_a_coordinator_told_not_to_draw_pages_starts_no_chart_worker_and_writes_the_other_files(services, process_env,
                                                                                                settings, tmp_path):
    """GOLIVE_REPORT_PAGES=0 (the harness's default): the run's files readers act on are there, and no worker
    process was started to draw a chart (with pages on it is running within a moment of the run's end)."""
    assert process_env["GOLIVE_REPORT_PAGES"] == "0"
    result = run_cli("run", str(skeleton_plan(tmp_path, hold="0.5s", smoke="0.5s")), "--run-id", "no-pages",
                     env=process_env)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = settings.artifacts_dir / "no-pages"
    assert {"report.json", "report.md", "prod_performance_validation.json"} <= {p.name for p in folder.iterdir()}
    time.sleep(2.0)  # the drawing would have started by now: its worker is spawned as the run ends
    assert not _children(services.procs["coordinator"].pid)
    assert not (folder / "report.html").exists() and not (folder / "chart.png").exists()
