"""Record the event stream of three real runs: how tests/recorded/events-v1.jsonl was made, so it can be made again.

    .venv/bin/python tests/recorded/record.py [--out tests/recorded/events-v1.jsonl]

It starts what the tests start (nats-server and PostgreSQL from their wheels, a Slack-like webhook receiver, the
five services as processes, all on loopback), runs the skeleton plan three times with `golive run` (one that
succeeds, one whose stage 2 breaches a p95 limit and rolls back, one that succeeds and is then watched for 3 s after
the go-live), waits for the stream to go quiet, and writes every message of the event stream in stream order, one
JSON object a line: ``subject``, ``headers`` and ``body`` (the CloudEvent, as JSON), under the subject root
``rec``. tests/test_recorded_stream.py replays it into a fresh root and reads it with today's code.

A recorded file is a format's witness: never re-record over one that tests read to make a change pass. Record a new
file (events-v2.jsonl) when the format changes, and keep the old one: stored runs stay readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from golive.demo.data import create_database, seed
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.nats_server import EmbeddedNats
from golive.stack.postgres import EmbeddedPostgres
from golive.stack.service_processes import (
    DATABASE_ENV,
    WEBHOOK_ENV,
    ServiceProcesses,
    service_env,
    wait_until_ready,
)
from golive.stack.webhook_sink import WebhookSink
from tests.builders import skeleton_dict, write_plan

ROOT = "rec"
ROWS = 2_000  # the skeleton's probes read stripe_events: a small table keeps them fast
QUIET_S = 4.0  # the stream counts as done once nothing new arrived for this long after the last run ended

# run id -> (how its plan differs from golive/plans/skeleton.yaml, its new deployment, the exit code `golive run` must give);
# each run rolls out a deployment of its own: the dry-run traffic target remembers each canary's weight
RUNS = {
    "run-rec-ok": (None, "dpl_ok", 0),
    "run-rec-rollback": ("breach_at_stage_2", "dpl_breach", 1),
    "run-rec-watch": ("watched", "dpl_watch", 0),
}


def breach_at_stage_2(plan: dict) -> None:
    # stage 1's windows pass; stage 2 measures a query that takes 30 ms against a 20 ms limit: two failed windows
    # in a row end its hold early (a real breach, judged window by window, so a real rollback)
    plan["analysis"] = {"interval": "500ms", "min_samples": 3, "consecutive_failure_limit": 2}
    plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
    plan["canary"]["stages"][1]["hold"] = "10s"
    plan["canary"]["stages"][1]["checks"] = [{"probe": "slow_query", "thresholds": {"p95_ms": 20}}]


def watched(plan: dict) -> None:
    # the runbook's "next 7 days" in 3 s: a check every second (each breaches), a summary every 2 s
    plan["probes"]["slow_query"] = {"query": "SELECT pg_sleep(0.03)"}
    plan["post_deploy"] = {"period": "3s", "health_every": "1s", "summary_every": "2s",
                           "checks": [{"probe": "slow_query", "duration": "500ms", "thresholds": {"p95_ms": 20}}]}


def plan_of(folder: Path, run_id: str, change: str | None) -> Path:
    plan = skeleton_dict(hold="1s", smoke="1s", edit=globals()[change] if change else None)
    return write_plan(folder, plan, f"{run_id}.yaml")


async def stream_messages(settings: Settings) -> list[dict]:
    """Every message of the event stream, in stream order, as recorded lines."""
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        js = nc.jetstream()
        stream = settings.subjects.event_stream
        info = await js.stream_info(stream)
        lines = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            lines.append({"subject": msg.subject, "headers": dict(msg.headers or {}), "body": json.loads(msg.data)})
        return lines
    finally:
        await nc.close()


async def last_seq(settings: Settings) -> int:
    nc = await nats.connect(settings.resolved_nats_url())
    try:
        return (await nc.jetstream().stream_info(settings.subjects.event_stream)).state.last_seq
    finally:
        await nc.close()


async def wait_quiet(settings: Settings, until_type: str) -> None:
    """Wait until an event of ``until_type`` is in the stream and nothing new came for QUIET_S."""
    seen, since = -1, time.monotonic()
    while True:
        now = await last_seq(settings)
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET_S and any(
                line["body"]["type"] == until_type for line in await stream_messages(settings)):
            return
        await asyncio.sleep(0.5)


def record(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="golive-record-"))
    try:
        with EmbeddedNats(work / "nats") as nats_server, EmbeddedPostgres(work / "pg") as pg, WebhookSink() as sink:
            create_database(pg.url, "golive_rec")
            database_url = pg.url_for("golive_rec")
            seed(database_url, ROWS)
            settings = Settings(nats_url=nats_server.url, subject_root=ROOT, state_dir=work / "state",
                                artifacts_dir=work / "artifacts")
            env = service_env(nats_server.url, settings.state_dir, {
                "GOLIVE_SUBJECT_ROOT": ROOT, "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir),
                DATABASE_ENV: database_url, WEBHOOK_ENV: sink.url,
            })
            procs = ServiceProcesses(env, work / "logs").start()
            try:
                asyncio.run(wait_until_ready(settings, SERVICES, procs))
                for run_id, (change, deployment, expected) in RUNS.items():
                    result = subprocess.run(
                        [sys.executable, "-m", "golive", "run", str(plan_of(work, run_id, change)), "--run-id", run_id,
                         "--deploy-id", deployment, "--previous-deploy-id", "dpl_old", "--json"],
                        env=env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
                    if result.returncode != expected:
                        raise SystemExit(f"{run_id}: exit {result.returncode}, expected {expected}\n{result.stderr}")
                    print(f"{run_id}: exit {result.returncode}", file=sys.stderr)
                asyncio.run(wait_quiet(settings, "golive.coordinator.watch_ended.v1"))
                lines = asyncio.run(stream_messages(settings))
            finally:
                procs.stop()
        out.write_text("".join(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n" for line in lines))
        print(f"{out}: {len(lines)} messages, {out.stat().st_size} bytes", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("events-v1.jsonl"))
    record(parser.parse_args().out)
