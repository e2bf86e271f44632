"""Events are forever: a recorded stream of real runs stays readable by today's code.

tests/recorded/events-v1.jsonl holds every message of the event stream of three runs made before plans had
versions (one succeeded, one rolled back at stage 2 by its windows, one succeeded and watched after the go-live;
tests/recorded/record.py made it). Today's models must parse every message (additive changes only within a
version: shared/events.py), and `golive status`, `report`, `resume` and `watch` must read the runs back from a
real nats-server, as they would read runs stored 400 days ago. Runs recorded before the run history
(shared/run_history.py) get their summary once, from their events, when a coordinator starts (as here).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

import golive.shared.commands  # noqa: F401  (registers every message type, as a service does)
from golive.services.coordinator.history import RunHistory
from golive.shared.bus import ensure_streams
from golive.shared.envelope import parse_envelope
from golive.shared.events import RunStarted
from golive.shared.plan import plan_of
from golive.shared.plan_versions import CURRENT
from golive.shared.provenance import event_origin_problem
from golive.shared.run_history import read_runs, read_watches
from golive.shared.run_summary import RunSummary
from golive.shared.settings import Settings
from golive.shared.subjects import Subjects
from golive.stack.service_processes import service_env
from tests.harness import run_cli

RECORDED = Path(__file__).parent / "recorded" / "events-v1.jsonl"
RECORDED_ROOT = "rec"
RUNS = {"run-rec-ok": "succeeded", "run-rec-rollback": "rolled_back", "run-rec-watch": "succeeded"}
STAGES_PASSED = [(f"stage {n} ({w}%): stripe_recent {m}", True) for n, w in ((1, 10), (2, 50), (3, 100))
                 for m in ("p95_ms", "error_rate_pct")]
SMOKE_PASSED = [("smoke: stripe_recent p95_ms", True), ("smoke: stripe_recent error_rate_pct", True)]
VERDICTS = {  # each run's checks in prod_performance_validation.json: the smoke test's and each stage's verdicts
    "run-rec-ok": SMOKE_PASSED + STAGES_PASSED,
    "run-rec-rollback": SMOKE_PASSED + STAGES_PASSED[:2] + [("stage 2 (50%): slow_query p95_ms", False)],
    "run-rec-watch": SMOKE_PASSED + STAGES_PASSED + [(f"post-deploy check {n}: slow_query p95_ms", False) for n in (1, 2, 3)],
}
WINDOWS = {  # each run's judged windows in the validation file (only the rolled-back run's plan had per-window analysis)
    "run-rec-ok": set(),
    "run-rec-rollback": {(f"stage 1 (10%): stripe_recent window {i} {m}", True) for i in (0, 1)
                         for m in ("p95_ms", "error_rate_pct")}
    | {(f"stage 2 (50%): slow_query window {i} p95_ms", False) for i in (0, 1)},
    "run-rec-watch": set(),
}


def recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines()]


def body_bytes(line: dict) -> bytes:
    return json.dumps(line["body"], separators=(",", ":")).encode()


def test_every_recorded_message_is_read_by_todays_models():
    # payload models forbid unknown keys: a field renamed or removed since the recording fails here, by name
    lines = recorded()
    problems = []
    for line in lines:
        try:
            envelope = parse_envelope(body_bytes(line))
        except ValueError as exc:
            problems.append(f"{line['subject']}: {exc}")
            continue
        if why := event_origin_problem(line["subject"], envelope, RECORDED_ROOT):
            problems.append(why)
    assert not problems, "\n".join(problems)
    # the recording keeps covering what a run says: a re-recording that lost a kind of event would test less
    types = {line["body"]["type"].split(".")[2] for line in lines}
    assert {"run_started", "phase_started", "migrations_applied", "probes_completed", "traffic_shifted",
            "probe_window", "window_judged", "step_failed", "compensation_started", "traffic_rolled_back",
            "migrations_reverted", "run_finished", "watch_started", "watch_check_completed", "watch_breached",
            "watch_summary", "watch_ended", "notification_sent"} <= types, types
    assert {line["body"]["runid"] for line in lines} == set(RUNS)


def test_the_recorded_runs_have_no_plan_version_and_read_their_plans_as_version_1_upgraded():
    starts = [line["body"]["data"] for line in recorded() if line["body"]["type"].endswith(".run_started.v1")]
    assert len(starts) == 3 and all("plan_version" not in data and "version" not in data["plan"] for data in starts)
    for data in starts:
        assert RunStarted.model_validate(data).plan_version == 1
        plan = plan_of(RunStarted.model_validate(data))
        assert plan.version == CURRENT and plan.name == "skeleton" and len(plan.canary.stages) == 3
        # version 1 -> 2: the rolled-back run's `inconclusive: ignore` reads as pause (shared/plan_versions.py)
        if data["plan"]["analysis"] is not None:
            assert data["plan"]["analysis"]["inconclusive"] == "ignore" and plan.analysis.inconclusive == "pause"


async def publish(settings: Settings, lines: list[dict]) -> None:
    """Every recorded message into ``settings``' root: its subjects, its stream name and each envelope's
    ``subject`` rewritten; ids, times and everything else as recorded."""
    old, new = Subjects(RECORDED_ROOT), settings.subjects
    await ensure_streams(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        for line in lines:
            subject = new.root + line["subject"].removeprefix(old.root)
            body = {**line["body"], "subject": subject} if line["body"].get("subject") else line["body"]
            headers = {k: new.event_stream if v == old.event_stream else v for k, v in line["headers"].items()}
            await js.publish(subject, json.dumps(body, separators=(",", ":")).encode(), headers=headers)
    finally:
        await nc.close()


async def summarise_old_runs(settings: Settings) -> int:
    """What a coordinator does when it starts (services/coordinator/history.py): each run without a summary in the
    run history gets one, from its events; how many it wrote."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        return await (await RunHistory.open(nc.jetstream(), settings.subjects)).rebuild_missing()
    finally:
        await nc.close()


def cli_env(settings: Settings) -> dict[str, str]:
    return service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir)})


@pytest.fixture(scope="module")
def replayed(nats_url, tmp_path_factory) -> dict[str, str]:
    """The environment of a CLI pointed at a fresh subject root holding the recorded stream (its runs summarised, as
    the first coordinator to start on it does)."""
    tmp = tmp_path_factory.mktemp("replayed")
    settings = Settings(nats_url=nats_url, subject_root=f"t{secrets.token_hex(5)}", state_dir=tmp / "state",
                        artifacts_dir=tmp / "artifacts")
    asyncio.run(publish(settings, recorded()))
    assert asyncio.run(summarise_old_runs(settings)) == len(RUNS)
    return cli_env(settings)


def test_runs_recorded_before_the_run_history_are_summarised_once_from_their_events(settings):
    asyncio.run(publish(settings, recorded()))

    assert asyncio.run(summarise_old_runs(settings)) == 3
    assert asyncio.run(summarise_old_runs(settings)) == 0  # the next coordinator to start finds them summarised

    async def history() -> tuple[list, list]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            return await read_runs(nc.jetstream(), settings.subject_root), \
                await read_watches(nc.jetstream(), settings.subject_root)
        finally:
            await nc.close()

    runs, watches = asyncio.run(history())
    assert {r.run_id: r.state for r in runs} == RUNS
    rolled_back = next(r for r in runs if r.run_id == "run-rec-rollback")
    assert (rolled_back.rollback.step, rolled_back.rollback.cause) == ("stage2:hold", "analysis")
    assert rolled_back.duration_s == 3.4 and rolled_back.health == "RolledBack"
    assert rolled_back.p95_ms["slow_query"] > 20 and rolled_back.deploy_id == "dpl_breach"
    [watch] = watches
    assert (watch.run_id, watch.checks_done, watch.checks_planned, watch.breaches, watch.summaries, watch.ended) == (
        "run-rec-watch", 3, 3, 3, 2, True)


@pytest.mark.e2e
def test_a_coordinator_starting_on_runs_recorded_before_the_run_history_summarises_them(settings, request):
    asyncio.run(publish(settings, recorded()))
    request.getfixturevalue("services")  # the five services start on that stream: the coordinator rebuilds at start
    env = cli_env(settings)
    deadline = time.monotonic() + 120  # in the background, once the coordinator is up: waited for, bounded
    while True:
        listed = run_cli("status", env=env)
        states = {line.split()[2]: line.split()[5] for line in listed.stdout.splitlines()[1:]}
        if len(states) == len(RUNS):
            break
        assert time.monotonic() < deadline, listed.stdout + listed.stderr
        time.sleep(0.5)
    assert states == RUNS, listed.stdout


def test_summarising_old_runs_leaves_alone_a_summary_a_coordinator_wrote(settings):
    asyncio.run(publish(settings, recorded()))

    async def written_then_rebuilt() -> tuple[int, list]:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            history = await RunHistory.open(nc.jetstream(), settings.subjects)
            driven = RunSummary(run_id="run-rec-ok", plan="skeleton", deploy_id="dpl_ok", started_at=datetime.now(UTC),
                                step="stage9:hold")
            await history.put_run(driven)  # the run's driver wrote it (a run taken over while the rebuild starts)
            return await history.rebuild_missing(), await read_runs(nc.jetstream(), settings.subject_root)
        finally:
            await nc.close()

    written, runs = asyncio.run(written_then_rebuilt())
    assert written == 2
    assert next(r for r in runs if r.run_id == "run-rec-ok").step == "stage9:hold"


def test_listing_runs_the_weekly_report_and_the_watch_list_read_the_run_history_not_the_event_stream(
        settings, tmp_path):
    """Reading every event ever recorded took 19 s and 885 MB at 300 runs: these read one summary per run. Proven
    by emptying the event stream once the runs are summarised: they are all still listed and reported."""
    asyncio.run(publish(settings, recorded()))
    asyncio.run(summarise_old_runs(settings))

    async def empty_the_event_stream() -> None:
        nc = await nats.connect(settings.resolved_nats_url())
        try:
            await nc.jetstream().purge_stream(settings.subjects.event_stream)
        finally:
            await nc.close()

    asyncio.run(empty_the_event_stream())
    env = cli_env(settings)

    listed = run_cli("status", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = {line.split()[2]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert {run: row[5] for run, row in rows.items()} == RUNS, listed.stdout
    assert "3s: stage2:hold failed: stage 2 (50%): slow_query window 1 failed" in listed.stdout

    weekly = run_cli("report", "--weekly", "--since", "2026-12-01", "--until", "2026-12-08", "--out", str(tmp_path),
                     env=env)
    assert weekly.returncode == 0, weekly.stdout + weekly.stderr
    report = json.loads(next(tmp_path.glob("weekly_performance_report_*.json")).read_text())
    assert [r["run_id"] for r in report["runs"]] == list(RUNS)
    assert report["outcomes"]["succeeded"] == 2 and report["rollbacks"]["by_cause"] == {"analysis": 1}
    assert report["post_deploy_breaches"] == 3 and report["p95_trends"]["slow_query"]["runs"]

    watches = run_cli("watch", env=env)
    assert watches.returncode == 0, watches.stdout + watches.stderr
    assert "run run-rec-watch: ended dpl_watch" in watches.stdout
    assert "checks 3/3, breaches 3, summaries 2" in watches.stdout


def test_status_lists_every_recorded_run_with_its_outcome(replayed):
    result = run_cli("status", env=replayed)

    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[2]: line.split() for line in result.stdout.splitlines()[1:]}
    assert {run: row[5] for run, row in rows.items()} == RUNS, result.stdout
    assert all(row[3] == "skeleton" for row in rows.values())


def test_status_of_the_rolled_back_run_gives_its_stage_verdicts_and_why(replayed):
    result = run_cli("status", "run-rec-rollback", env=replayed)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "run run-rec-rollback: plan skeleton, deployment dpl_breach (previous dpl_old)" in out
    assert "state: RolledBack · step 6 of 8 · rolled back after 3.4s" in out
    assert "why: stage 2 (50%) failed: slow_query p95 31.98 ms > 20 ms in 2 consecutive windows" in out
    assert "stage 2 (50%) windows: 2 judged · failed 2/3 · in a row 2/2 · inconclusive 0 (too many pause the run)" in out
    assert "canary dpl_breach · stable dpl_old · traffic back on dpl_old, canary read back 0%" in out
    # stage 1's windows passed, stage 2's two failed ones ended its hold
    assert "windows judged: 2 pass, 2 fail, 0 inconclusive" in out
    assert "stage 2 (50%): slow_query window 0 failed: p95 33.12 ms > 20 ms over 16 requests" in out
    assert "[compensating] undo stage1:shift:10" in out and "[compensating] undo migrate" in out
    assert "run rolled_back after 3.4s" in out


def test_status_of_the_succeeded_run_ends_at_its_last_step(replayed):
    result = run_cli("status", "run-rec-ok", env=replayed)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "state: Healthy · step 8 of 8 · succeeded after 4.5s" in result.stdout, result.stdout
    assert "weight set 100%, read back 100%" in result.stdout


@pytest.mark.parametrize("run_id", list(RUNS))
def test_report_rebuilds_every_artifact_of_a_recorded_run(replayed, run_id, tmp_path):
    result = run_cli("report", run_id, "--out", str(tmp_path), env=replayed)

    assert result.returncode == 0, result.stdout + result.stderr
    written = {Path(line).name for line in result.stdout.split()}
    assert {"report.md", "report.html", "report.json", "prod_performance_validation.json", "chart.png"} <= written
    assert any(name.endswith(".svg") for name in written), written
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["run_id"], report["outcome"]) == (run_id, RUNS[run_id])
    validation = json.loads((tmp_path / "prod_performance_validation.json").read_text())
    checks = validation["checks"]
    # failing ones first, then the rest, each in the order measured
    expected = [v for v in VERDICTS[run_id] if not v[1]] + [v for v in VERDICTS[run_id] if v[1]]
    assert [(c["name"], c["passed"]) for c in checks if c["kind"] == "check"] == expected
    passed = [c["passed"] for c in checks]
    assert passed == sorted(passed), "failing rows first"
    assert validation["validation_metadata"]["failed"] == [c["name"] for c in checks if not c["passed"]]
    # every judged window of every stage is there: the stage that failed by its windows shows them failing
    windows = {(c["name"], c["passed"]) for c in checks if c["kind"] == "window"}
    assert windows == WINDOWS[run_id]
    # the watched run went live, but its post-deploy checks breached: not every check passed
    assert validation["validation_metadata"]["overall_passed"] is (run_id == "run-rec-ok")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("run_id", list(RUNS))
def test_resume_of_a_recorded_run_says_it_already_ended(replayed, run_id):
    result = run_cli("resume", run_id, "--no-wait", env=replayed)

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"run {run_id} already ended: {RUNS[run_id]}" in result.stderr


def test_watch_of_the_recorded_watched_run_gives_its_checks_and_breaches(replayed):
    result = run_cli("watch", "run-rec-watch", env=replayed)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "run run-rec-watch: ended dpl_watch" in result.stdout and "checks 3/3, breaches 3, summaries 2" in result.stdout
    assert "last check (3): FAILED" in result.stdout
