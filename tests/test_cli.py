"""The `golive` command as a user meets it: help, plan check, exit codes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from golive.cli.app import app
from golive.plans import SKELETON
from golive.shared.events import ApprovalGranted, PauseRequested
from tests.builders import skeleton_dict, write_plan
from tests.cli_runs import BAD_PLAN, gated_run, published, watched_run
from tests.harness import run_cli
from tests.unit.saga_run import hold_result


def every_command() -> list[tuple[list[str], str]]:
    """Each command and sub-command of the `golive` app, as its words and its help's first line, read from the app
    itself: a command added tomorrow is in this list without a change here."""
    found = []

    def walk(command, words: list[str]) -> None:
        found.append((words, " ".join((command.help or "").split("\n\n")[0].split())))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = every_command()


def test_the_command_list_is_read_from_the_app():
    words = [" ".join(w) for w, _help in COMMANDS]
    assert {"", "run", "status", "report", "resume", "plan", "plan check", "docs", "docs asyncapi"} <= set(words)
    assert len(words) == len(set(words)) > 15
    assert all(help_line for _w, help_line in COMMANDS), "a command without help: write its docstring"


@pytest.mark.parametrize(("words", "help_line"), COMMANDS, ids=[" ".join(w) or "golive" for w, _h in COMMANDS])
def test_every_command_has_help(words, help_line):
    result = CliRunner().invoke(app, [*words, "--help"], prog_name="golive", env={"COLUMNS": "100"})

    assert result.exit_code == 0, result.output
    shown = f" {' '.join(result.output.split())} "
    assert f"Usage: golive {' '.join(words)}".rstrip() in shown, shown
    assert help_line in shown, shown
    for name, _help in (c for c in COMMANDS if len(c[0]) == len(words) + 1 and c[0][:-1] == words):
        assert f" {name[-1]} " in shown, f"{name[-1]} is missing from `{' '.join(['golive', *words])} --help`"


def test_help_is_what_a_user_gets_from_the_installed_command():
    result = run_cli("--help", env=dict(os.environ))
    assert result.returncode == 0
    shown = f" {' '.join(result.stdout.split())} "
    assert all(f" {words[0]} " in shown for words, _help in COMMANDS if len(words) == 1)


def test_plan_check_accepts_the_skeleton():
    result = run_cli("plan", "check", str(SKELETON), env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "valid plan 'skeleton'" in result.stdout


def test_plan_check_lists_every_problem_with_its_line_and_exits_2(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text(BAD_PLAN)
    result = run_cli("plan", "check", str(plan), env=dict(os.environ))
    assert result.returncode == 2
    assert f"{plan}:11: canary.stages[1].hold: a duration cannot be negative" in result.stderr
    assert f"{plan}:16: surprise: unknown key 'surprise'" in result.stderr
    assert result.stderr.index(":11: ") < result.stderr.index(":16: "), "problems come in the file's order"


def test_plan_check_speaks_plain_words_with_file_line_and_the_key_meant(tmp_path):
    plan = tmp_path / "typos.yaml"
    plan.write_text(BAD_PLAN.replace("surprise: true\n", "").replace("    - weight: 40\n      hold: -5s",
                                                                      "    - weight: 100\n      hodl: 5s")
                    .replace("name: bad", "nmae: bad").replace("sql: CREATE INDEX idx", "sql: CREATE INDEX CONCURRENTLY idx"))
    result = run_cli("plan", "check", str(plan), env=dict(os.environ))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{plan}:1: nmae: unknown key 'nmae'; did you mean 'name'?" in lines, result.stderr
    assert f"{plan}:1: name: missing (required)" in lines, result.stderr
    assert f"{plan}:11: canary.stages[1].hodl: unknown key 'hodl'; did you mean 'hold'?" in lines, result.stderr
    assert f"{plan}:10: canary.stages[1].hold: missing (required)" in lines, result.stderr
    for pydantic_words in ("Extra inputs", "Field required", "Input should", "<unicode string>"):
        assert pydantic_words not in result.stderr


def test_plan_check_names_the_file_and_line_of_broken_yaml(tmp_path):
    plan = tmp_path / "broken.yaml"
    plan.write_text("name: broken\ncanary:\n  stages: [\n    {weight: 100, hold: 5s\n")
    result = run_cli("plan", "check", str(plan), env=dict(os.environ))
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{plan}:5: not valid YAML"), result.stderr
    assert "<unicode string>" not in result.stderr


def test_plan_check_refuses_a_blocking_index_build(tmp_path):
    plan = tmp_path / "blocking.yaml"
    plan.write_text(BAD_PLAN.replace("surprise: true\n", "").replace("- weight: 40\n      hold: -5s", "- weight: 100\n      hold: 5s"))
    result = run_cli("plan", "check", str(plan), env=dict(os.environ))
    assert result.returncode == 2
    assert f"{plan}:15: migrations.statements[0].sql: users: CREATE INDEX without CONCURRENTLY blocks writes" in result.stderr


def test_run_refuses_an_invalid_plan_before_touching_the_bus(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text(BAD_PLAN)
    env = {**os.environ, "GOLIVE_NATS_URL": "nats://127.0.0.1:1"}
    result = run_cli("run", str(plan), env=env)
    assert result.returncode == 2
    assert "cannot reach NATS" not in result.stderr


def test_run_says_how_to_start_the_stack_when_the_bus_is_unreachable(tmp_path):
    env = {**os.environ, "GOLIVE_NATS_URL": "nats://user:s3cret@127.0.0.1:1", "GOLIVE_STATE_DIR": str(tmp_path)}
    result = run_cli("run", str(SKELETON), env=env, timeout_s=60)
    assert result.returncode == 4
    assert "golive up" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_run_outside_the_maintenance_window_is_refused_before_anything_starts(tmp_path):
    import datetime as dt

    plan = skeleton_dict()
    today = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[dt.datetime.now(dt.UTC).weekday()]
    other_days = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != today]
    plan["window"] = {"maintenance": {"days": other_days, "start": "00:00", "end": "23:59", "timezone": "UTC"}}
    path = write_plan(tmp_path, plan, "windowed.yaml")
    env = {**os.environ, "GOLIVE_NATS_URL": "nats://127.0.0.1:1"}
    result = run_cli("run", str(path), env=env)
    assert result.returncode == 2
    assert "outside the maintenance window" in result.stderr and "--force-window" in result.stderr
    assert "cannot reach NATS" not in result.stderr


def test_operator_commands_are_documented_and_say_what_they_need():
    result = run_cli("--help", env=dict(os.environ))
    for command in ("approve", "abort", "pause", "continue", "retry", "status"):
        assert command in result.stdout
    missing_reason = run_cli("pause", "run-1", env=dict(os.environ))
    assert missing_reason.returncode == 2 and "--reason" in missing_reason.stderr




# --- `golive status RUN` and `golive watch RUN` on runs read back from a real nats-server (issue 15, finding 4) -----


def test_status_of_a_run_waiting_at_a_gate_or_paused_says_paused_not_running(nats_url, settings):
    at_gate = gated_run("run-at-gate")
    paused = gated_run("run-paused")
    paused.operator(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot verified"))
    paused.advance_to("stage1:hold")
    paused.window(0, probe="db", count=30, replica_lag_s=1.5, connection_use_pct=40.0)
    paused.operator(PauseRequested(reason="checking the dashboards", requested_by="ana"))
    env = published([*at_gate.stream, *paused.stream], settings)

    gate = run_cli("status", "run-at-gate", env=env)
    held = run_cli("status", "run-paused", env=env)

    assert gate.returncode == 0 and held.returncode == 0, gate.stderr + held.stderr
    assert "state: running" not in gate.stdout and "state: running" not in held.stdout
    assert "state: Paused · step 1 of 5 · the preflight gate" in gate.stdout, gate.stdout
    assert 'WAITING at "Confirm backup completion": `golive approve run-at-gate --comment ...`' in gate.stdout
    assert "state: Paused · step 3 of 5 · stage 1 (10%) hold" in held.stdout, held.stdout
    assert "paused by ana: checking the dashboards" in held.stdout
    assert "canary deploy-new · stable deploy-old · weight set 10%, read back 10%" in held.stdout
    assert "guards (db): replica lag 1.5 s <= 8 s · connection use 40% <= 80%" in held.stdout


def test_status_of_a_run_golive_paused_names_continue_once(nats_url, settings):
    # analysis.inconclusive: pause (the default): the hold's answer had too little evidence to judge
    paused = gated_run("run-golive-paused")
    paused.operator(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot verified"))
    paused.advance_to("stage1:hold")
    thin = hold_result(passed=True, probes=["recent", "db"], label="stage 1 (10%)")
    thin = thin.model_copy(update={"results": [r.model_copy(update={"verdict": "inconclusive", "summary": "12 requests < min_samples 20"})
                                               for r in thin.results]})
    paused.answer(thin)
    env = published(paused.stream, settings)

    held = run_cli("status", "run-golive-paused", env=env)

    assert held.returncode == 0, held.stderr
    assert "paused by golive: stage 1 (10%) inconclusive: " in held.stdout, held.stdout
    assert held.stdout.count("golive continue") == 1, held.stdout
    assert "holding before stage2:shift:100: `golive continue run-golive-paused`" in held.stdout, held.stdout


def test_watch_never_shows_a_next_check_in_the_past(nats_url, settings):
    now = datetime.now(UTC)
    # check 2 of the first was due 50 minutes ago (no coordinator sent it, or its answer is awaited); of the
    # second, it is due in 59 minutes
    overdue = watched_run("run-overdue", now - timedelta(hours=1), every=timedelta(minutes=10))
    ahead = watched_run("run-ahead", now - timedelta(minutes=1), every=timedelta(hours=1))
    env = published([*overdue, *ahead], settings)

    late = run_cli("watch", "run-overdue", env=env)
    soon = run_cli("watch", "run-ahead", env=env)

    assert late.returncode == 0 and soon.returncode == 0, late.stderr + soon.stderr
    due = now - timedelta(minutes=50)
    assert "next check" not in late.stdout, late.stdout
    assert f"check 2 of 144 overdue: due at {due:%Y-%m-%d %H:%M}" in late.stdout, late.stdout
    assert "no result yet" in late.stdout
    assert f"next check (2 of 24): {now + timedelta(minutes=59):%Y-%m-%d %H:%M}" in soon.stdout, soon.stdout
    assert "overdue" not in soon.stdout


def test_demo_refuses_from_stage_without_a_bad_canary_before_starting_anything(tmp_path):
    env = {**os.environ, "GOLIVE_STATE_DIR": str(tmp_path / "state")}
    result = run_cli("demo", "--from-stage", "2", "--state-dir", str(tmp_path / "demo"), env=env, timeout_s=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--from-stage 2" in result.stderr and "needs --bad-canary" in result.stderr
    assert not (tmp_path / "demo").exists(), "nothing was started"


def test_an_unknown_run_id_is_refused_at_once_naming_the_recent_runs(settings, tmp_path):
    import asyncio

    import nats

    from golive.shared.bus import ensure_streams
    from tests.harness import record_run_started

    async def two_runs() -> None:
        await ensure_streams(settings)
        nc = await nats.connect(settings.nats_url)
        for run_id in ("run-20260104-020000-aaaaaa", "run-20260105-020000-bbbbbb"):
            await record_run_started(nc.jetstream(), settings.subjects, run_id)
        await nc.close()

    env = {**os.environ, "GOLIVE_NATS_URL": settings.nats_url, "GOLIVE_SUBJECT_ROOT": settings.subject_root,
           "GOLIVE_STATE_DIR": str(tmp_path / "state")}
    nothing_yet = run_cli("status", "run-nope", env=env)
    asyncio.run(two_runs())
    for command in (["status", "run-nope"], ["approve", "run-nope"], ["report", "run-nope", "--out", str(tmp_path)]):
        refused = run_cli(*command, env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert ("no run run-nope; recent runs: run-20260105-020000-bbbbbb, run-20260104-020000-aaaaaa"
                in refused.stderr), (command, refused.stderr)
    assert nothing_yet.returncode == 2 and "no run run-nope: no run has started on this bus yet" in nothing_yet.stderr
