"""A stage hold's checks are open loop unless the plan says otherwise (shared/plan/checks.py hold_load): a target
slower than the schedule shows as requests sent late and never sent, counted in every window and the result,
never as fewer requests. Against a real HTTP server (tests/prober/http_target.py) and the real prober."""

from __future__ import annotations

import pytest

from golive.services.coordinator.steps import build_steps
from golive.services.prober.run import run_probes
from golive.shared.commands import RunProbe, RunProbes
from golive.shared.events import ProbeWindow
from golive.shared.plan import parse_plan
from golive.shared.plan.checks import HOLD_RATE
from golive.shared.plan.plan import Plan


def plan_text(url: str, hold: str = "30s", interval: str = "30s", load: str = "") -> str:
    return f"""
name: holds
database: {{url_env: GOLIVE_DATABASE_URL}}
probes:
  app: {{kind: http, url: "{url}"}}
  other: {{kind: http, url: "{url}"}}
smoke:
  - {{probe: app, duration: 5s, thresholds: {{p95_ms: 400}}}}
analysis: {{interval: {interval}, min_samples: 10}}
canary:
  stages:
    - weight: 100
      hold: {hold}
      checks:
        - {{probe: app, {load}thresholds: {{p95_ms: 400, error_rate_pct: 1}}}}
        - {{probe: other, load: {{mode: closed}}, concurrency: 3, thresholds: {{p95_ms: 400}}}}
"""


def hold_probes(plan: Plan) -> list[RunProbe]:
    [hold] = [s.command for s in build_steps(plan, "dpl_new", "dpl_old") if isinstance(s.command, RunProbes)]
    return hold.probes


def test_a_hold_check_naming_no_load_is_open_loop_and_one_naming_closed_stays_closed():
    plan = parse_plan(plan_text("http://127.0.0.1:9/ok"))
    default, closed = hold_probes(plan)
    smoke = next(s.command for s in build_steps(plan, "dpl_new", "dpl_old") if s.name.startswith("smoke"))

    # 30 s windows need 528 clean requests for a 1% error limit to pass at 99%: 18/s, so the runbook's 20/s
    assert (default.load.mode, default.load.rate, default.concurrency) == ("open", HOLD_RATE, 2)
    assert (closed.load.mode, closed.load.rate, closed.concurrency) == ("closed", None, 3)
    assert isinstance(smoke, RunProbe) and smoke.load.mode == "closed"  # outside a hold: closed, as before
    # a run resumed from its stored plan (a full dump) loads its holds as it started them
    stored = Plan.model_validate(plan.model_dump(mode="json"))
    assert hold_probes(stored) == hold_probes(plan)


def test_short_windows_raise_the_default_rate_to_what_their_limits_need():
    [default, _] = hold_probes(parse_plan(plan_text("http://127.0.0.1:9/ok", interval="5s")))

    assert (default.load.mode, default.load.rate, default.concurrency) == ("open", 106, 8)  # 528 / 5 s, 8 workers


@pytest.mark.timing
async def test_a_target_slower_than_the_default_open_loop_shows_late_and_unsent_requests_in_windows_and_result(
        http_target):
    # a rate and no mode: open loop at 20/s on the default 2 workers, to a target that takes 150 ms: they answer ~13/s,
    # the rest queue and go late
    plan = parse_plan(plan_text(http_target.url("/ok?delay_ms=150"), hold="3s", interval="1s", load="load: {rate: 20}, "))
    [cmd, _] = hold_probes(plan)
    windows: list[ProbeWindow] = []

    async def publish(window: ProbeWindow) -> None:
        windows.append(window)

    [result] = await run_probes([cmd], {}, publish_window=publish)

    assert (result.mode, result.target_rate) == ("open", HOLD_RATE)
    assert result.late > 0 and result.unsent > 0  # a backlog, and what was still due at the end
    assert result.errors_by_class.get("unsent") == result.unsent  # never sent: failures, by class
    assert result.count + result.errors + result.overloaded == HOLD_RATE * 3  # every due request accounted for once
    assert sum(w.stats.late for w in windows) == result.late
    assert sum(w.stats.unsent for w in windows) == result.unsent == windows[-1].stats.unsent
    assert all(w.stats.confidence == 0.99 for w in windows)
    assert f"{result.late:,} requests sent late (every worker busy), {result.unsent:,} never sent" in result.summary
