"""`--json` on the read commands (issue 17, finding 5): one JSON document on stdout, the shape docs/client.md
gives, no terminal styling, read back from a real nats-server (runs published as the services record them)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from golive.plans import SKELETON
from golive.shared.events import ApprovalGranted, PauseRequested
from tests.cli_runs import BAD_PLAN, gated_run, published, watched_run
from tests.harness import run_cli

# docs/client.md: a run's fields under `golive status --json`; adding one is fine, losing or renaming one is not
RUN_FIELDS = {"run_id", "plan", "deploy_id", "previous_deploy_id", "started_at", "finished_at", "state", "phase", "step",
              "reason", "duration_s", "rollback", "paused_by", "post_deploy_breaches", "p95_ms", "outcome", "health"}
WATCH_FIELDS = {"run_id", "deploy_id", "started_at", "ends_at", "checks_done", "checks_planned", "breaches", "summaries",
                "ended"}


def as_json(*args: str, env: dict[str, str], code: int = 0):
    result = run_cli(*args, "--json", env=env)
    assert result.returncode == code, result.stdout + result.stderr
    assert "\x1b[" not in result.stdout  # no terminal colour in what a script parses
    return json.loads(result.stdout)


def test_status_json_of_one_run_is_its_summary_with_outcome_and_health(nats_url, settings):
    at_gate = gated_run("run-at-gate")
    paused = gated_run("run-paused")
    paused.operator(ApprovalGranted(stage=None, approved_by="maksim", comment="snapshot verified"))
    paused.advance_to("stage1:hold")
    paused.operator(PauseRequested(reason="[bold]checking[/] the dashboards", requested_by="ana"))
    env = published([*at_gate.stream, *paused.stream], settings)

    gate = as_json("status", "run-at-gate", env=env)
    held = as_json("status", "run-paused", env=env)

    assert set(gate) == RUN_FIELDS and set(held) == RUN_FIELDS, sorted(gate)
    assert (gate["run_id"], gate["plan"], gate["state"], gate["outcome"], gate["health"]) == (
        "run-at-gate", "checkout", "waiting", "running", "Paused")
    assert "golive approve run-at-gate" in gate["reason"]
    assert (held["state"], held["phase"], held["step"], held["health"]) == ("paused", "canary", "stage1:hold", "Paused")
    assert held["paused_by"] == "ana: [bold]checking[/] the dashboards"  # a person's text, kept as data
    assert datetime.fromisoformat(held["started_at"]).tzinfo is not None
    assert held["finished_at"] is None and held["duration_s"] is None


def test_status_json_of_an_unknown_run_exits_2_and_prints_nothing_to_parse(nats_url, settings):
    env = published(gated_run("run-at-gate").stream, settings)
    result = run_cli("status", "run-nope", "--json", env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert "no run run-nope" in result.stderr


def test_status_json_of_every_run_is_an_array_even_when_there_is_none(nats_url, settings):
    env = published([], settings)  # streams, no run, no run history yet
    assert as_json("status", env=env) == []


def test_watch_json_of_one_run_and_of_every_run(nats_url, settings):
    now = datetime.now(UTC)
    env = published(watched_run("run-watched", now - timedelta(hours=1), every=timedelta(minutes=10)), settings)

    one = as_json("watch", "run-watched", env=env)

    assert set(one) == WATCH_FIELDS
    assert (one["run_id"], one["checks_done"], one["checks_planned"], one["breaches"], one["ended"]) == (
        "run-watched", 1, 144, 0, False)
    assert datetime.fromisoformat(one["ends_at"]) - datetime.fromisoformat(one["started_at"]) == timedelta(days=1)
    assert as_json("watch", env=env) == []  # the list is the coordinator's run history: none was written here


def test_plan_check_json_valid_and_invalid(tmp_path):
    valid = as_json("plan", "check", str(SKELETON), env=dict(os.environ))
    assert valid == {"plan": str(SKELETON), "valid": True, "name": "skeleton", "migrations": valid["migrations"],
                     "smoke": valid["smoke"], "stages": [10, 50, 100], "problems": []}
    assert valid["migrations"] >= 1 and valid["smoke"] >= 1

    plan = tmp_path / "bad.yaml"
    plan.write_text(BAD_PLAN)
    invalid = as_json("plan", "check", str(plan), env=dict(os.environ), code=2)
    assert invalid["plan"] == str(plan) and invalid["valid"] is False
    assert {"line": 11, "where": "canary.stages[1].hold", "reason": "a duration cannot be negative"} in invalid["problems"]
    surprise = next(p for p in invalid["problems"] if p["where"] == "surprise")
    assert surprise["line"] == 16 and surprise["reason"].startswith("unknown key 'surprise'"), surprise
    assert [p["line"] for p in invalid["problems"]] == sorted(p["line"] for p in invalid["problems"])  # the file's order
