"""The post-deploy watch on real services: the runbook's "next 7 days" compressed to seconds."""

from __future__ import annotations

import pytest

from tests.builders import skeleton_plan
from tests.harness import run_cli

pytestmark = pytest.mark.e2e


def watched(plan: dict) -> None:
    # after the go-live, a query that takes 30 ms is checked against a 20 ms limit: every check breaches
    plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
    plan["post_deploy"] = {"period": "3s", "health_every": "1s", "summary_every": "2s",
                           "checks": [{"probe": "slow_query", "duration": "500ms", "thresholds": {"p95_ms": 20}}]}
    notifications = plan["notifications"]
    notifications["on"] = ["run_succeeded", "watch_breached", "watch_summary"]


def test_watch_checks_the_deployment_after_the_run_and_tells_slack_of_a_breach(services, process_env, webhook, tmp_path):
    result = run_cli("run", str(skeleton_plan(tmp_path, edit=watched)), "--run-id", "run-watch", env=process_env)
    assert result.returncode == 0, result.stdout + result.stderr

    # three checks (at 0, 1 and 2 s), a summary at 2 s and a last one when the period ends
    received = webhook.wait_for(lambda r: sum("post-deploy summary" in m["text"] for m in r) == 2)
    texts = [m["text"] for m in received]
    assert texts[0].startswith("✅ skeleton Production Deployment SUCCESS: "), texts
    breaches = [m for m in received if "post-deploy check failed" in m["text"]]
    assert len(breaches) == 3, texts
    fields = {f["title"]: f["value"] for f in breaches[0]["attachments"][0]["fields"]}
    assert fields["Reason"].startswith("post-deploy check 1 of canary failed: slow_query: p95 ")
    assert "&gt; 20 ms (99% bound " in fields["Reason"]  # Slack's escaping of ">"; the bound past the limit: a breach

    status = run_cli("watch", "run-watch", env=process_env)
    assert status.returncode == 0, status.stderr
    assert "run run-watch: ended canary" in status.stdout and "checks 3/3, breaches 3" in status.stdout, status.stdout
    assert "last check (3): FAILED" in status.stdout
