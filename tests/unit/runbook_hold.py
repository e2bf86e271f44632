"""The runbook-shaped run the saga's analysis tests drive (tests/unit/test_saga_analysis.py,
test_inconclusive_policy.py): its plan, a run at a stage's hold, and the windows and answers a hold gets."""

from __future__ import annotations

from datetime import timedelta

from golive.services.coordinator.saga import StopProbes
from golive.shared.envelope import new_envelope
from golive.shared.events import LatencySummary, ProbeCompleted, ProbesCompleted, ProbeWindow, Verdict, WindowJudged
from tests.unit.saga_run import Run, approve, events, plan_from, probe_result, replaced
from tests.unit.story_runs import PLAN as RUNBOOK_PLAN

# the story tests' runbook-shaped plan with an http check beside the SQL one in stage 1 (and no 50% stage), aimed at
# the deployment under test, and a baseline to compare the canary with
PLAN = replaced(
    RUNBOOK_PLAN,
    **{"database: {url_env: DB_URL}\n": 'database: {url_env: DB_URL}\n'
                                       'targets: {deployment_url: "https://app-{deployment}.example.com"}\n',
       "  recent: {query: SELECT 1}\n": "  recent: {query: SELECT 1}\n  app: {kind: http, url: /api/health}\n",
       "    - {weight: 10, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}]}\n"
       "    - {weight: 50, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1.5}}]}\n":
       "    - weight: 10\n"
       "      hold: 60s\n"
       "      checks:\n"
       "        - {probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}\n"
       "        - {probe: app, window: 20s, thresholds: {p95_ms: 300}}\n",
       "sample_every: 2s}\n": "sample_every: 2s}\nbaseline: {p95_increase_ms: 50}\n"})

def runbook_run(text: str = PLAN, **replacements: str) -> Run:
    run = Run(plan=plan_from(text, **replacements))
    run.start()
    return run


def through_the_gate(run: Run) -> Run:
    approve(run)
    return run


def at_hold(stage: int = 1, **replacements: str) -> Run:
    run = through_the_gate(runbook_run(**replacements))
    run.advance_to(f"stage{stage}:hold")
    return run


def window_of(run: Run, index: int, *, probe: str = "recent", p95: float = 120.0, count: int = 1_200, errors: int = 0,
              target: str = "probe", command_id: str | None = None, **gauges: float):
    """A ProbeWindow of the hold in flight as the prober publishes it: no correlationid, the hold's id inside."""
    run.clock += timedelta(seconds=30)
    stats = LatencySummary(count=count, errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95, max_ms=p95, gauges=gauges)
    data = ProbeWindow(command_id=command_id or run.state.in_flight, probe=probe, target=target, index=index,
                       start_s=index * 30.0, seconds=30.0, stats=stats)
    return run.feed(new_envelope(data, id=f"{data.command_id}/window/{probe}/{target}/{index}", source="/golive/prober",
                                 runid=run.run_id, time=run.clock))


def judged(outputs) -> list[WindowJudged]:
    return [e for e in events(outputs) if isinstance(e, WindowJudged)]


def stops(outputs) -> list[StopProbes]:
    return [o for o in outputs if isinstance(o, StopProbes)]


def guard_inconclusive(checks: str = "pass") -> ProbesCompleted:
    """A stage 1 hold's answer whose guard read no replica lag at all (as the prober judges it): inconclusive."""
    guard = ProbeCompleted(
        probe="db", kind="pg_health", count=30, errors=0, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, max_ms=4.0, duration_s=60.0,
        gauges={"connection_use_pct": 40.0}, passed=False, verdict="inconclusive",
        verdicts=[Verdict(metric="replica_lag_s", limit=8, observed=-1.0, passed=False, samples=30),
                  Verdict(metric="connection_use_pct", limit=80, observed=40.0, passed=True, samples=30)],
        summary="db: connection use 40% <= 80%, replica lag never measured")
    results = [probe_result(p, passed=checks == "pass", summary="p95 3.1 ms <= 400 ms over 300 requests")
               for p in ("recent", "app")]
    if checks == "inconclusive":
        results[0] = results[0].model_copy(update={"verdict": "inconclusive"})
    return ProbesCompleted(results=[*results, guard], passed=False, verdict="inconclusive",
                           summary="1 of 3 probes inconclusive", duration_s=60.0)
