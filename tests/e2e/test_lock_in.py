"""Lock-in artifacts of real runs: the runbook's validation file, the report, the status badges."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import nats
import pytest

from golive.shared.envelope import parse_envelope
from golive.shared.events import RunFinished
from tests.builders import skeleton_plan
from tests.harness import run_cli, start_run

pytestmark = pytest.mark.e2e


def plan_file(tmp_path, breach: bool):
    def slow_stage_2(plan: dict) -> None:
        plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
        plan["canary"]["stages"][1]["checks"] = [{"probe": "slow_query", "thresholds": {"p95_ms": 20}}]

    return skeleton_plan(tmp_path, edit=slow_stage_2 if breach else None)


def lock_in_of(run_id: str, tmp_path, settings, env: dict[str, str], breach: bool, exit_code: int) -> tuple[Path, dict]:
    """`golive run` of plan_file to its end, which must be ``exit_code``: the run's artifacts folder and its
    validation file."""
    result = run_cli("run", str(plan_file(tmp_path, breach)), "--run-id", run_id, env=env)
    assert result.returncode == exit_code, result.stdout + result.stderr
    folder = settings.artifacts_dir / run_id
    return folder, json.loads((folder / "prod_performance_validation.json").read_text())


def test_successful_run_leaves_a_passing_validation_file_report_and_badges(services, settings, process_env, tmp_path):
    folder, validation = lock_in_of("run-lockin", tmp_path, settings, process_env, breach=False, exit_code=0)

    assert validation["validation_metadata"]["overall_passed"] is True
    assert validation["validation_metadata"]["outcome"] == "succeeded"
    assert {c["metric"] for c in validation["checks"]} == {"p95_ms", "error_rate_pct"}
    checks = [c for c in validation["checks"] if c["kind"] == "check"]
    assert len(checks) == 8  # smoke + 3 stages, p95 and error rate each
    assert all(c["passed"] and c["samples"] > 0 for c in validation["checks"])
    report = json.loads((folder / "report.json").read_text())
    assert report["final_traffic"]["canary_weight"] == 100
    assert [p["phase"] for p in report["phases"]] == ["migrate", "smoke", "canary"]
    assert "<svg" in (folder / "badge-p95.svg").read_text()
    assert "# Go-live report: skeleton" in (folder / "report.md").read_text()


def test_rolled_back_run_reports_the_failed_check_and_report_rebuilds_it(services, settings, process_env, tmp_path):
    folder, validation = lock_in_of("run-lockin-bad", tmp_path, settings, process_env, breach=True, exit_code=1)

    assert validation["validation_metadata"]["overall_passed"] is False
    failed = [c for c in validation["checks"] if not c["passed"]]
    assert failed and failed[0]["probe"] == "slow_query" and failed[0]["value"] > 20
    markdown = (folder / "report.md").read_text()
    assert "**ROLLED BACK**: stage 2 (50%) failed: slow_query p95 " in markdown, markdown
    assert "FAIL" in markdown and "undo stage1:shift:10" in markdown

    metrics = httpx.get(f"http://127.0.0.1:{services.metrics_ports['coordinator']}/metrics").text
    assert 'golive_runs_total{outcome="rolled_back"} 1.0' in metrics
    assert 'golive_rollbacks_total{cause="threshold"} 1.0' in metrics
    assert "golive_breach_to_rollback_seconds_count 1.0" in metrics

    rebuilt = tmp_path / "rebuilt"
    again = run_cli("report", "run-lockin-bad", "--out", str(rebuilt), env=process_env)
    assert again.returncode == 0, again.stderr
    assert json.loads((rebuilt / "prod_performance_validation.json").read_text()) == validation


def test_the_validation_file_is_there_when_the_run_finished_event_is(services, settings, process_env, tmp_path):
    """A reader that sees run_finished (`golive run` exiting, a CI job, the monitoring team) finds the run's
    validation file and report at once: they are written before the event is published, not after."""
    folder = settings.artifacts_dir / "run-lockin-order"

    async def files_when_finished() -> tuple[bool, bool]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            events = await nc.jetstream().subscribe(settings.subjects.events_of_run("run-lockin-order"),
                                                    ordered_consumer=True)
            run = await asyncio.to_thread(start_run, plan_file(tmp_path, breach=False), "run-lockin-order",
                                          process_env)
            try:
                while not isinstance(parse_envelope((await events.next_msg(timeout=90)).data).data, RunFinished):
                    pass
                # looked at the moment the event arrives: no await between the event and the look
                return (folder / "prod_performance_validation.json").is_file(), (folder / "report.md").is_file()
            finally:
                await asyncio.to_thread(run.communicate, timeout=60)
        finally:
            await nc.close()

    assert asyncio.run(files_when_finished()) == (True, True)
