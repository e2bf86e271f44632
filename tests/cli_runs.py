"""Runs and plans the CLI's tests share (tests/test_cli.py, tests/test_cli_json.py): a bad plan, a gated run driven
through the saga, a watched run's events, and publishing events on a real nats-server as their services would."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import nats

from golive.shared.bus import ensure_streams
from golive.shared.envelope import new_envelope
from golive.shared.events import RunFinished, WatchCheckCompleted, WatchStarted
from golive.stack.service_processes import service_env
from tests.builders import RunEvents, checkout_plan, skeleton_dict
from tests.unit.saga_run import Run

BAD_PLAN = """\
name: bad
database:
  url_env: DB_URL
probes:
  q: {query: SELECT 1}
canary:
  stages:
    - weight: 50
      hold: 10m
    - weight: 40
      hold: -5s
migrations:
  statements:
    - name: users
      sql: CREATE INDEX idx_users_email ON auth.users(email)
surprise: true
"""


def published(envelopes, settings) -> dict[str, str]:
    """``envelopes`` on ``settings``' own root of a real nats-server (publish_events); the environment of a CLI that
    reads them."""
    asyncio.run(publish_events(envelopes, settings))
    return service_env(settings.resolved_nats_url(), settings.state_dir, {"GOLIVE_SUBJECT_ROOT": settings.subject_root})


async def publish_events(envelopes, settings) -> None:
    """``envelopes`` on ``settings``' own root of a real nats-server, each from the service its type names (as the
    bus's permissions make it: shared/provenance.py)."""
    await ensure_streams(settings)
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        for e in envelopes:
            owner = e.data.TYPE.split(".")[1]
            service = e.data.service if owner == "service" else owner
            subject = settings.subjects.event(e.runid, service, e.data.short_name())
            sent = new_envelope(e.data, id=e.id, source=f"/golive/{service}", runid=e.runid, subject=subject,
                                time=e.time, correlationid=e.correlationid)
            await js.publish(subject, sent.to_json(), headers={"Nats-Msg-Id": sent.id})
    finally:
        await nc.close()


GATED = checkout_plan("""
  db: {kind: pg_health}
preflight:
  - {gate: Confirm backup completion}
guards: {probe: db, replica_lag_s: 8, connection_use_pct: 80}
canary:
  stages:
    - {weight: 10, hold: 60s, checks: [{probe: recent, thresholds: {p95_ms: 400, error_rate_pct: 1}}]}
    - {weight: 100, hold: 60s}
""")


def gated_run(run_id: str) -> Run:
    """A run of a plan with a preflight gate, driven through the coordinator's decide(): it waits at the gate."""
    run = Run(run_id=run_id, plan=GATED)
    run.start()
    return run


def watched_run(run_id: str, live_at: datetime, every: timedelta, period: timedelta = timedelta(days=1)) -> list:
    """The events of a run that went live at ``live_at`` and whose post-deploy watch (a check every ``every``)
    completed its first check at once."""
    def watched(plan: dict) -> None:
        plan["post_deploy"] = {"period": f"{period.total_seconds():g}s", "health_every": f"{every.total_seconds():g}s",
                               "summary_every": "1h", "checks": [{"probe": "stripe_recent", "duration": "1s"}]}

    run = RunEvents(run_id, skeleton_dict(edit=watched), start=live_at)
    run.started(0)
    run.add(RunFinished(outcome="succeeded", reason="every phase passed", duration_s=60.0), 0)
    run.add(WatchStarted(deploy_id="dpl_new", period_s=period.total_seconds(), health_every_s=every.total_seconds(),
                         summary_every_s=3600, ends_at=live_at + period, checks=["stripe_recent"]), 0)
    run.add(WatchCheckCompleted(index=0, passed=True, summary="stripe_recent: p95 3.10 <= 400 over 300 requests",
                                next_check_at=live_at + every), 2)
    return run.events
