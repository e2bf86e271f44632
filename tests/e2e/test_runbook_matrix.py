"""The runbook's failure matrix: golive/plans/supabase-golive.yaml, time-compressed, on real servers.

Success; a rollback for a P95 breach (the canary app answers 600 ms late), an error-rate breach (every second
answer a 500), a failed health check (/api/health 503) and a replica-lag guard (the streaming replica's replay
paused) at 10%, 50% and 100%; a migration that fails (no traffic shifted, no invalid index left).

One stack for the module: nats, the five services (two probers), one PostgreSQL with two streaming replicas,
and per *lane* a database, the demo app's stable and canary deployments behind an Envoy of its own and a Slack
receiver. Lanes run at the same time (they share no traffic state); the cases of a lane run one after another,
each putting back what it broke. The lane with the guard cases watches the second replica, whose replay it
pauses; the other lanes watch the first.

Rehearsal settings (beyond compress(plan, 3600) with 0.5 s windows): holds of 2 s, min_samples 5 (a 0.5 s
window holds ~7 health checks), a replica-lag guard of 1 s instead of 8 s (lag grows in real time, which a
rehearsal does not compress), and looser latency limits: two runs at once on two cores (and a prober whose open
loop counts its own scheduling delay) put healthy P95s near 600 ms at times, so the canary's P95 limit is
1,000 ms against a bad canary 1.5 s late, and the smoke and final-validation limits (10-40 ms) are five times
looser; the runbook's own limits are what the demo (tests/e2e/test_demo.py) runs. Health 200 and the error-rate
limits (0%, 1%, 1.5%, 1%) are the runbook's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml

from golive.demo.app import DemoApp
from golive.demo.data import create_database, seed_demo
from golive.demo.run import operate_run
from golive.plans import RUNBOOK
from golive.plans.rehearsal import compress
from golive.shared.envelope import Envelope
from golive.shared.events import (
    PhaseStarted,
    RunFinished,
    StepFailed,
    TrafficPromoted,
    TrafficRolledBack,
    TrafficShifted,
    WindowJudged,
)
from golive.shared.plan import Plan, parse_plan
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES
from golive.stack.envoy_proxy import EmbeddedEnvoy
from golive.stack.postgres import EmbeddedPostgres
from golive.stack.replica import StreamingReplica
from golive.stack.service_processes import ServiceProcesses, service_env, wait_until_ready
from golive.stack.webhook_sink import WebhookSink

pytestmark = [pytest.mark.e2e, pytest.mark.timing]  # measured latencies decide it

SEED_ROWS = 20_000
HOLD_S = 2.0
WEIGHTS = {1: 10, 2: 50, 3: 100}
BROKEN_MIGRATION = {"name": "reviews_status_unique",  # review statuses repeat: the unique build fails
                    "sql": "CREATE UNIQUE INDEX CONCURRENTLY idx_review_items_status_unique ON review_items(status)"}
# two lanes at a time on two cores; a success promotes the canary, so it ends its lane
LANES = {
    "a": ["migration", "latency@1", "latency@2", "latency@3", "health@1", "success"],
    "b": ["errors@1", "errors@2", "errors@3", "health@2", "health@3", "guard@1", "guard@2", "guard@3"],
}
GUARD_LANE = "b"  # watches a replica of its own, whose replay it pauses
LATENCY_S, P95_LIMIT_MS = 1.5, 1000
CASES = [case for cases in LANES.values() for case in cases]


@dataclass
class Lane:
    """One lane's own deployments, proxy, database and Slack receiver; env var names prefixed by its name."""

    name: str
    database_url: str
    replica: StreamingReplica
    stable: DemoApp
    canary: DemoApp
    envoy: EmbeddedEnvoy
    slack: WebhookSink

    def var(self, what: str) -> str:
        return f"MATRIX_{self.name.upper()}_{what}"

    def env(self) -> dict[str, str]:
        return {self.var("DATABASE_URL"): self.database_url, self.var("REPLICA_URL"): self.replica.url_for(self.database_name),
                self.var("APP_URL"): self.envoy.url, self.var("ENVOY_ADMIN_URL"): self.envoy.admin_url,
                self.var("SLACK_URL"): self.slack.url}

    @property
    def database_name(self) -> str:
        return psycopg.conninfo.conninfo_to_dict(self.database_url)["dbname"]

    def plan(self, migration_fails: bool = False) -> Plan:
        """The runbook plan aimed at this lane's targets, compressed for the matrix."""
        data = yaml.safe_load(RUNBOOK.read_text())
        data["database"]["url_env"] = self.var("DATABASE_URL")
        data["traffic"]["provider"]["admin_url_env"] = self.var("ENVOY_ADMIN_URL")
        data["targets"]["deployment_url"] = f"${{{self.var('APP_URL')}}}/deployments/{{deployment}}"
        data["probes"]["production_api"]["url"] = f"${{{self.var('APP_URL')}}}/api/review_list"
        data["probes"]["db_health"]["replica_url_envs"] = [self.var("REPLICA_URL")]
        data["notifications"]["sinks"]["slack"]["webhook_url_env"] = self.var("SLACK_URL")
        data["analysis"]["min_samples"] = 5
        data["guards"]["replica_lag_s"] = 1
        for check in data["smoke"] + data["final_validation"]:
            if check["probe"] != "production_api" and "p95_ms" in check.get("thresholds", {}):
                check["thresholds"]["p95_ms"] *= 5
        for check in [c for stage in data["canary"]["stages"] for c in stage["checks"]] + data["final_validation"]:
            if check["probe"] in ("app_health", "production_api"):
                check["thresholds"]["p95_ms"] = P95_LIMIT_MS
                check["concurrency"] = 32  # requests 1.5 s late must not queue behind each other
        if migration_fails:
            data["migrations"]["statements"].append(BROKEN_MIGRATION)
        plan = compress(parse_plan(yaml.safe_dump(data, allow_unicode=True)), 3600, min_window_s=0.5)
        stages = [stage.model_copy(update={"hold": HOLD_S}) for stage in plan.canary.stages]
        return plan.model_copy(update={"canary": plan.canary.model_copy(update={"stages": stages})})

    def canary_weight(self) -> int:
        with urllib.request.urlopen(f"{self.envoy.admin_url}/runtime", timeout=5) as answer:
            entries = json.loads(answer.read())["entries"]
        return int(entries["routing.canary.canary"]["final_value"])


@dataclass
class CaseResult:
    code: int
    run_id: str
    events: list[Envelope]
    slack: list[dict]
    canary_weight: int
    invalid_indexes: int
    artifacts: Path
    seconds: float
    notes: list[str] = field(default_factory=list)


class _Heartbeat(threading.Thread):
    """Commits on the guard lane's primary every 50 ms: the WAL a paused replica falls behind on."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS matrix_heartbeat (at timestamptz)")
            while not self.stop.wait(0.05):
                conn.execute("INSERT INTO matrix_heartbeat VALUES (now())")


def _wait_replica_caught_up(replica: StreamingReplica, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(replica.server.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            received, replayed = conn.execute("SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()").fetchone()
            if received == replayed:
                return
            time.sleep(0.05)
    raise TimeoutError("the replica did not catch up after its replay was resumed")


def _run_case(lane: Lane, case: str, settings: Settings) -> CaseResult:
    kind, _, stage = case.partition("@")
    run_id = f"run-matrix-{case.replace('@', '-')}-{secrets.token_hex(3)}"
    plan = lane.plan(migration_fails=kind == "migration")
    events: list[Envelope] = []
    first_message = len(lane.slack.received)

    def on_phase(phase: PhaseStarted) -> None:
        if not stage or not phase.step.startswith(f"stage{stage}:shift"):
            return
        if kind == "guard":
            lane.replica.pause_replay()
        else:
            lane.canary.set_mode(kind)

    started = time.monotonic()
    try:
        code = asyncio.run(operate_run(settings, plan, run_id, "canary", "stable", events.append, on_phase))
    finally:
        if kind == "guard":
            lane.replica.resume_replay()
            _wait_replica_caught_up(lane.replica)
        elif stage:
            lane.canary.set_mode("ok")
    seconds = time.monotonic() - started
    final = ("SUCCESS",) if case == "success" else ("rolled back",)
    received = lane.slack.wait_for(lambda r: any(w in m.get("text", "") for m in r[first_message:] for w in final))
    with psycopg.connect(lane.database_url) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready").fetchone()[0]
    artifacts = settings.artifacts_dir / run_id
    deadline = time.monotonic() + 15
    while not (artifacts / "report.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the coordinator writes them as the run ends
    return CaseResult(code, run_id, events, received[first_message:], lane.canary_weight(), invalid, artifacts, seconds)


@pytest.fixture(scope="module")
def matrix(nats_url, tmp_path_factory) -> dict[str, CaseResult]:
    """Every case of the matrix, lanes at the same time; the results by case name."""
    root = tmp_path_factory.mktemp("matrix")
    settings = Settings(nats_url=nats_url, subject_root=f"m{secrets.token_hex(4)}", state_dir=root / "state",
                        artifacts_dir=root / "artifacts", graceful_timeout_s=5.0)
    # outside pytest's basetemp: the servers' system user must reach it (see tests/conftest.py)
    data_dir = Path(tempfile.mkdtemp(prefix="golive-matrix-"))
    stack: list = []
    setup_started = time.monotonic()
    try:
        pg = EmbeddedPostgres(data_dir / "primary").start()
        stack.append(pg)
        create_database(pg.url, "template_runbook")
        seed_demo(pg.url_for("template_runbook"), SEED_ROWS)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            for name in LANES:
                conn.execute(f'CREATE DATABASE "lane_{name}" TEMPLATE template_runbook')
        replicas = {which: StreamingReplica(pg, data_dir / f"replica-{which}").start() for which in ("watched", "paused")}
        stack += replicas.values()
        lanes: dict[str, Lane] = {}
        for name in LANES:
            db_url = pg.url_for(f"lane_{name}")
            stable = DemoApp("stable", db_url, root / "logs" / name, latency_s=LATENCY_S)
            canary = DemoApp("canary", db_url, root / "logs" / name, latency_s=LATENCY_S)
            stack += [stable, canary]
            lanes[name] = Lane(name, db_url, replicas["paused" if name == GUARD_LANE else "watched"], stable, canary,
                               None, WebhookSink().start())  # type: ignore[arg-type]
            stack.append(lanes[name].slack)
        with ThreadPoolExecutor(8) as pool:  # the apps start at the same time (each waits for its pool)
            list(pool.map(lambda app: app.start(), [app for lane in lanes.values() for app in (lane.stable, lane.canary)]))
        for name, lane in lanes.items():
            lane.envoy = EmbeddedEnvoy(root / "envoy" / name, lane.stable.address, lane.canary.address).start()
            stack.append(lane.envoy)
        env = service_env(nats_url, settings.state_dir, {
            "GOLIVE_SUBJECT_ROOT": settings.subject_root, "GOLIVE_GRACEFUL_TIMEOUT_S": "5",
            "GOLIVE_ARTIFACTS_DIR": str(settings.artifacts_dir),
        })
        for lane in lanes.values():
            env.update(lane.env())
        services = ServiceProcesses(env, root / "logs").start()
        services.start_one("prober", "2")  # three lanes of holds at once: two probers share the work queue
        stack.append(services)
        asyncio.run(wait_until_ready(settings, SERVICES, services))

        heartbeat = _Heartbeat(lanes[GUARD_LANE].database_url)
        heartbeat.start()
        results: dict[str, CaseResult] = {}
        errors: list[BaseException] = []

        def run_lane(name: str) -> None:
            try:
                for case in LANES[name]:
                    results[case] = _run_case(lanes[name], case, settings)
            except BaseException as exc:  # reported by the fixture
                errors.append(exc)

        started = time.monotonic()
        threads = [threading.Thread(target=run_lane, args=(name,)) for name in LANES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        heartbeat.stop.set()
        print(f"matrix: set up in {started - setup_started:.1f} s, {len(results)} runs in {time.monotonic() - started:.1f} s: "
              + ", ".join(f"{c} {r.seconds:.1f}s" for c, r in results.items()))
        for case, result in results.items():
            finished = next((e.data for e in result.events if isinstance(e.data, RunFinished)), None)
            print(f"  {case}: {finished.outcome if finished else '?'}: {finished.reason if finished else ''}")
        if errors:
            raise errors[0]
        yield results
    finally:
        for part in reversed(stack):
            part.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _steps(result: CaseResult) -> list[str]:
    return [e.data.step for e in result.events if isinstance(e.data, PhaseStarted)]


def _texts(result: CaseResult) -> list[str]:
    return [m.get("text", "") for m in result.slack]


def _report(result: CaseResult) -> dict:
    return json.loads((result.artifacts / "report.json").read_text())


def test_the_runbook_succeeds_ends_promoted_at_100_and_says_so(matrix):
    result = matrix["success"]
    assert result.code == 0, _steps(result)
    steps = _steps(result)
    order = ["preflight:check:app_health", "preflight:gate:confirm-backup-completion", "migrate", "smoke:app_health",
             "smoke:signup_exists",
             "stage1:shift:10", "stage1:hold", "stage2:shift:50", "stage2:hold", "stage3:shift:100", "stage3:hold",
             "final_validation", "lock_in:promote"]
    assert [s for s in steps if s in order] == order, steps
    assert any(isinstance(e.data, TrafficPromoted) for e in result.events)
    assert result.canary_weight == 100 and result.invalid_indexes == 0
    texts = _texts(result)
    assert texts[0] == "🚀 Starting Supabase Production Deployment", texts
    assert sum("passed" in t for t in texts) == 3, texts
    assert texts[-1].startswith("✅ Supabase Production Deployment SUCCESS: canary live after "), texts
    validation = json.loads((result.artifacts / "prod_performance_validation.json").read_text())
    assert validation["validation_metadata"]["overall_passed"] is True
    assert _report(result)["outcome"] == "succeeded"


FAILURES = [f"{kind}@{stage}" for kind in ("latency", "errors", "health", "guard") for stage in (1, 2, 3)]


@pytest.mark.parametrize("case", FAILURES)
def test_a_breach_at_a_stage_rolls_back_to_stable_at_once_and_says_why(matrix, case):
    kind, _, stage_text = case.partition("@")
    stage = int(stage_text)
    result = matrix[case]
    steps = _steps(result)
    assert result.code == 1, steps
    # every stage before it passed; the breaching stage's hold is the last forward step, then the undo
    forward = [s for s in steps if s.startswith("stage")]
    expected = [f"stage{n}:{what}" for n in range(1, stage + 1) for what in (f"shift:{WEIGHTS[n]}", "hold")]
    assert forward[:len(expected)] == expected and not [s for s in forward[len(expected):] if "shift" in s], steps
    assert "final_validation" not in steps and "lock_in:promote" not in steps
    failed = [e.data for e in result.events if isinstance(e.data, WindowJudged) and e.data.verdict == "fail"]
    assert all(w.step == f"stage{stage}:hold" for w in failed), failed  # no window failed before the breach
    step_failed = next(e.data for e in result.events if isinstance(e.data, StepFailed))
    assert step_failed.step == f"stage{stage}:hold", step_failed
    if kind == "guard":  # one window over a guard fails the stage at once
        assert any(w.guard and "replica lag" in w.reason for w in failed) and step_failed.cause == "guard", failed
    elif kind == "latency":  # windows, or the hold's totals when the late answers land at its end
        assert step_failed.cause in ("analysis", "threshold") and "p95" in step_failed.reason, step_failed
    else:  # errors from the first window: the canary's own health check, or production's error rate
        probes = ("app_health",) if kind == "health" else ("app_health", "production_api")
        assert any(w.probe in probes and w.error_rate_pct for w in failed), failed
        # the canary's health check is also compared with stable's as its requests complete (services/prober/
        # sequential.py): that judge may end the hold, with its sequential p, before a window closes
        assert step_failed.cause == "analysis" or (
            step_failed.cause == "threshold" and "sequential p" in step_failed.reason), step_failed
    kinds = [type(e.data) for e in result.events]
    assert kinds.index(StepFailed) < kinds.index(TrafficRolledBack) < kinds.index(RunFinished)
    assert result.canary_weight == 0  # read back from Envoy: all traffic on stable
    texts = _texts(result)
    assert texts[0] == "🚀 Starting Supabase Production Deployment", texts
    assert sum("passed" in t for t in texts) == stage - 1, texts
    assert any(t.startswith(f"🚨 Supabase Production Rollback Triggered: stage {stage} (") for t in texts), texts
    assert texts[-1].startswith("↩️ Supabase Production rolled back to stable: "), texts
    report = _report(result)
    # the reason names the stage as people do, with its numbers, never a step name
    assert report["outcome"] == "rolled_back" and report["reason"].startswith(f"stage {stage} ({WEIGHTS[stage]}%) failed")
    assert f"stage{stage}:" not in report["reason"]


def test_a_failed_migration_shifts_no_traffic_and_leaves_no_invalid_index(matrix):
    result = matrix["migration"]
    steps = _steps(result)
    assert result.code == 1, steps
    assert "migrate" in steps and not [s for s in steps if s.startswith(("smoke", "stage"))], steps
    assert not any(isinstance(e.data, TrafficShifted) for e in result.events)
    assert result.canary_weight == 0 and result.invalid_indexes == 0
    step_failed = next(e.data for e in result.events if isinstance(e.data, StepFailed))
    assert step_failed.step == "migrate" and "reviews_status_unique" in step_failed.reason
    texts = _texts(result)
    assert texts[0] == "🚀 Starting Supabase Production Deployment", texts
    # traffic never moved: the run is stopped, not rolled back, and the indexes it may have built are kept
    assert not any("Rollback Triggered" in t or "rolled back to" in t for t in texts), texts
    assert any(t.startswith("🛑 Supabase Production go-live stopped before traffic moved: migrate failed: ") for t in texts)
    assert texts[-1].startswith("🛑 Supabase Production go-live failed before traffic moved: migrate failed: "), texts
    assert _report(result)["outcome"] == "rolled_back"
