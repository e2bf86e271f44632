"""Untrusted text (plan names, step names, reasons, SQL, event data) is printed as text, never as Rich markup
(issue 12, finding 8): `[/oops]` neither crashes the CLI nor `[bold red]x` restyles its output."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import nats
import psycopg
import yaml
from rich.console import Console

from golive.services.coordinator.history import RunHistory
from golive.shared.bus import connect_options, ensure_streams
from golive.shared.events import (
    LatencySummary,
    PauseRequested,
    PhaseStarted,
    ProbeWindow,
    RunFinished,
    StepFailed,
    WindowJudged,
)
from golive.shared.plan import Plan
from golive.views.live import LiveView, fold, render
from tests.builders import RunEvents, skeleton_dict
from tests.harness import REPO, golive_popen, run_cli, wait_for_output

HOSTILE = "[/oops] [bold red]x"
T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
RUN = "run-markup"


def hostile_plan() -> dict:
    """The skeleton with the hostile text as its name, a probe's name and a statement's name."""
    plan = skeleton_dict()
    plan["name"] = HOSTILE
    plan["probes"] = {HOSTILE: plan["probes"]["stripe_recent"]}
    plan["smoke"][0]["probe"] = HOSTILE
    for stage in plan["canary"]["stages"]:
        stage["checks"][0]["probe"] = HOSTILE
    plan["migrations"]["statements"][0]["name"] = HOSTILE
    return plan


def run_events() -> list:
    stats = LatencySummary(count=10, errors=5, p50_ms=1.0, p95_ms=900.0, p99_ms=900.0, max_ms=900.0)
    run = RunEvents(RUN, Plan.model_validate(hostile_plan()), start=T0, root="x")
    run.started()  # named for the plan: the hostile text
    for data in [
        PhaseStarted(phase="canary", step="stage1:hold", detail=HOSTILE),
        ProbeWindow(command_id="c1", probe=HOSTILE, index=0, start_s=0, seconds=10, stats=stats),
        WindowJudged(step="stage1:hold", probe=HOSTILE, index=0, verdict="fail", reason=HOSTILE, count=15,
                     p95_ms=900.0, error_rate_pct=33.0),
        PauseRequested(reason=HOSTILE, requested_by=HOSTILE),
        StepFailed(step="stage1:hold", reason=HOSTILE),
        RunFinished(outcome="rolled_back", reason=HOSTILE, duration_s=1.0),
    ]:
        run.add(data)
    return run.events


def test_the_live_panel_shows_hostile_text_as_typed():
    view = LiveView()
    for envelope in run_events()[:4]:  # the run is still in its hold: windows, decisions, no outcome yet
        view = fold(view, envelope)
    console = Console(file=io.StringIO(), width=300, color_system=None)  # markup on, as a user's console is

    console.print(render(view, T0 + timedelta(seconds=5)))

    shown = console.file.getvalue()
    assert f"plan {HOSTILE}" in shown
    assert shown.count(HOSTILE) >= 3, shown  # the plan, the window's probe and its reason, the decision


def test_plan_check_prints_a_hostile_plan_name_as_typed(tmp_path):
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(hostile_plan()))

    result = run_cli("plan", "check", str(file), env=dict(os.environ))

    assert result.returncode == 0, result.stderr
    assert f"valid plan {HOSTILE!r}" in result.stdout


def test_plan_errors_print_hostile_text_as_typed(tmp_path):
    plan = hostile_plan()
    plan["smoke"][0]["probe"] = "[bold red]missing[/oops]"
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(plan))

    result = run_cli("plan", "check", str(file), env=dict(os.environ))

    assert result.returncode == 2
    assert "no probe named '[bold red]missing[/oops]'" in result.stderr
    assert "\\[" not in result.stderr  # not escaped twice either


def _env(settings) -> dict[str, str]:
    return {**os.environ, "GOLIVE_NATS_URL": settings.resolved_nats_url(), "GOLIVE_SUBJECT_ROOT": settings.subject_root,
            "GOLIVE_STATE_DIR": str(settings.state_dir)}


async def _publish(settings, envelopes) -> None:
    await ensure_streams(settings)
    nc = await nats.connect(**await connect_options(settings))
    try:
        js = nc.jetstream()
        for e in envelopes:
            source = e.source.rsplit("/", 1)[-1]
            await js.publish(settings.subjects.event(RUN, source, e.data.short_name()), e.to_json(),
                             headers={"Nats-Msg-Id": e.id})
        await (await RunHistory.open(js, settings.subjects)).rebuild_missing()  # its summary, as a coordinator writes
    finally:
        await nc.close()


def test_event_lines_and_status_print_hostile_text_as_typed(settings):
    asyncio.run(_publish(settings, run_events()))
    env = _env(settings)

    lines = run_cli("events", "--run", RUN, env=env)
    one = run_cli("status", RUN, env=env)
    every = run_cli("status", env=env)

    for result in (lines, one, every):
        assert result.returncode == 0, result.stdout + result.stderr
        assert HOSTILE in result.stdout, result.stdout
    assert f"step stage1:hold failed: {HOSTILE}" in lines.stdout
    assert f"run rolled_back after 1.0s: {HOSTILE}" in lines.stdout
    assert f"plan {HOSTILE}" in one.stdout


def test_migrate_prints_a_blockers_query_and_a_statement_name_as_typed(database_url, tmp_path):
    """The issue's case: a session holding a lock the index build waits for, whose last query has `[/oops]`."""
    plan = {
        "name": HOSTILE, "database": {"url_env": "MARKUP_TEST_DB"},
        "migrations": {"session": {"lock_timeout_ms": 0, "progress_interval_s": 0.2}, "statements": [
            {"name": HOSTILE, "sql": "CREATE INDEX CONCURRENTLY idx_markup ON stripe_events (created_at)"}]},
        "canary": {"stages": [{"weight": 100, "hold": "1s"}]},
    }
    file = tmp_path / "plan.yaml"
    file.write_text(yaml.safe_dump(plan))

    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE stripe_events IN SHARE UPDATE EXCLUSIVE MODE")
        blocker.execute(f'SELECT 1 AS "{HOSTILE}"')  # the blocker's query as pg_stat_activity shows it
        migrate = golive_popen([sys.executable, "-m", "golive", "migrate", str(file)], cwd=REPO, text=True,
                               env={**os.environ, "MARKUP_TEST_DB": database_url},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            seen = wait_for_output(migrate, "waiting on pid")
        except AssertionError:
            migrate.kill()
            raise AssertionError(migrate.communicate()[1]) from None
        blocker.rollback()  # let the build go on
    rest, errors = migrate.communicate(timeout=120)

    assert migrate.returncode == 0, seen + rest + errors
    assert "Traceback" not in errors
    assert HOSTILE in seen.splitlines()[-1]  # the blocker's query
    assert f"{HOSTILE}: built in" in rest  # the statement's name
