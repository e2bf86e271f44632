"""Chaos benchmark: kill -9 one service at chosen and at random moments of real runs, and check every run ends right.

    python bench/chaos.py [--trials N] [--seed S] [--targeted-only] [--smoke] [--only 'migrator @'] [--keep]

One embedded stack for all trials (nats-server and PostgreSQL from their wheels, a local Slack receiver, the five
services as child processes supervised as under `golive up`: a killed service is started again after a short
backoff). Each trial is one `golive run` of golive/plans/skeleton.yaml (dry-run traffic provider, lock_in promote, its own
run id, deployment and index; a "failing" plan's stage 2 cannot pass, so the run rolls back and drops its index),
with one service killed (SIGKILL) at one moment. Targeted trials come first (each service in each phase it works
in, and the rollback path), then random ones (a random service, a random delay into the run).

Per trial, and in total, it checks:
- the terminal state: one run_finished with the outcome the plan calls for (succeeded, or rolled_back for a
  failing plan) and `golive run`'s exit code; the canary's weight read back from the dry-run provider's file (100
  after the promote, 0 after the rollback); the index in pg_index (present and valid after success, absent after
  a rollback with drop_indexes);
- duplicated side effects: a command whose ``command.done`` appears more than once in the services' logs, a build
  or drop the migrator's history records more than once;
- lost or duplicated messages: each message the run's events call for (start, each stage passed, rollback
  alert, final) received by the webhook receiver exactly once;
- stuck runs: no run_finished within ``--stuck-after`` seconds;
- for rolled-back runs, the time from the failure (the later of the kill and the stage's failure) to traffic
  restored (the traffic service's traffic_rolled_back event).

The last line: ``chaos: N trials, correct C/N, duplicates D, lost L, stuck S``; exit 0 only when every trial is
correct with nothing duplicated, lost or stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

import psycopg  # noqa: E402
import yaml  # noqa: E402

from golive.demo.data import create_database, seed  # noqa: E402
from golive.plans import SKELETON  # noqa: E402
from golive.shared.settings import Settings  # noqa: E402
from golive.shared.subjects import SERVICES  # noqa: E402
from golive.stack.nats_server import EmbeddedNats  # noqa: E402
from golive.stack.postgres import EmbeddedPostgres  # noqa: E402
from golive.stack.service_processes import DATABASE_ENV, WEBHOOK_ENV, ServiceProcesses, service_env, wait_until_ready  # noqa: E402
from golive.stack.supervise import RestartPolicy, Supervisor  # noqa: E402
from golive.stack.webhook_sink import WebhookSink  # noqa: E402

LEASE_TTL_S = 3  # a killed coordinator's runs are taken over after 3 s, not 15
MESSAGES_WAIT_S = 45.0  # a killed notifier's claim lapses after 10 s; its redelivery comes after that
EVT = "golive.coordinator."
# a random kill lands within the first seconds a run surely lasts (from `golive run`'s start): a passing run lasts
# over 8 s (2 s smoke, three 2 s holds), a failing one over 5 s (its stage 2 fails within its hold)
RANDOM_KILL_WITHIN_S = {False: 8.0, True: 5.0}

Event = dict  # a CloudEvent as `golive run --json` prints it


# --- the moments: pure predicates over the run's events --------------------------------------------------------


def step(event: Event) -> str:
    """The step a phase_started event starts ("" for any other event)."""
    return event["data"].get("step", "") if event["type"] == EVT + "phase_started.v1" else ""


def step_is(name: str) -> Callable[[Event], bool]:
    return lambda e: step(e) == name


def step_starts(prefix: str) -> Callable[[Event], bool]:
    return lambda e: step(e).startswith(prefix)


def typed(short: str, **data: str) -> Callable[[Event], bool]:
    return lambda e: e["type"].endswith(f".{short}.v1") and all(e["data"].get(k) == v for k, v in data.items())


@dataclass(frozen=True)
class Moment:
    """Where a targeted trial kills ``service``: ``delay_s`` after the first event ``when`` matches (or, with
    ``in_flight``, once a message of that kind is held at the receiver: the notifier is killed mid-post).
    ``freeze`` = (service, event): that service is stopped (SIGSTOP) from that event until the kill, so the
    command the kill point follows waits for it (the kill lands before its answer, every time). ``logged``: kill
    once the service's own log shows that event for the run (it is doing the work now: the kill lands mid-work)."""

    name: str
    service: str
    when: Callable[[Event], bool] | None
    failing: bool = False
    gate: bool = False
    delay_s: float = 0.0
    freeze: tuple[str, Callable[[Event], bool]] | None = None
    in_flight: str | None = None  # a message kind (see MESSAGE_KINDS)
    logged: str | None = None  # an event name in the service's log (``migration.apply``)


TARGETED: tuple[Moment, ...] = (
    Moment("migrate", "coordinator", step_is("migrate")),
    Moment("smoke", "coordinator", step_starts("smoke:"), delay_s=0.3),
    Moment("canary shift", "coordinator", step_is("stage2:shift:50")),
    Moment("hold", "coordinator", step_is("stage1:hold"), delay_s=0.5),
    Moment("gate wait", "coordinator", step_is("stage3:gate"), gate=True, delay_s=0.2),
    Moment("lock_in promote, before its answer", "coordinator", step_is("lock_in:promote"),
           freeze=("traffic", step_is("stage3:hold"))),
    Moment("rollback started", "coordinator", typed("step_failed"), failing=True),
    Moment("last compensation, before its answer", "coordinator", typed("compensation_started", undoes="migrate"),
           failing=True, freeze=("migrator", typed("step_failed"))),
    Moment("index build (mid-build)", "migrator", None, logged="migration.apply"),
    # the server finishes the build after its client died: the rollback must still drop the run's index
    Moment("index build (mid-build), then rollback", "migrator", None, failing=True, logged="migration.apply"),
    Moment("revert (compensation)", "migrator", typed("compensation_started", undoes="migrate"), failing=True,
           freeze=("migrator", typed("step_failed"))),
    Moment("smoke", "prober", step_starts("smoke:"), delay_s=0.5),
    Moment("hold", "prober", step_is("stage1:hold"), delay_s=0.7),
    Moment("failing hold", "prober", step_is("stage2:hold"), failing=True, delay_s=0.3),
    Moment("canary shift, before its answer", "traffic", step_is("stage2:shift:50"),
           freeze=("traffic", step_is("stage1:hold"))),
    Moment("lock_in promote, before its answer", "traffic", step_is("lock_in:promote"),
           freeze=("traffic", step_is("stage3:hold"))),
    Moment("rollback, before its answer", "traffic", typed("step_failed"), failing=True,
           freeze=("traffic", step_is("stage2:hold"))),
    Moment("start message in flight", "notifier", None, in_flight="run_started"),
    Moment("stage message in flight", "notifier", None, in_flight="stage_passed"),
    Moment("rollback alert in flight", "notifier", None, failing=True, in_flight="rollback_started"),
    Moment("final message in flight", "notifier", None, failing=True, in_flight="run_rolled_back"),
)
SMOKE_MOMENTS = (("coordinator", "lock_in promote, before its answer"), ("traffic", "rollback, before its answer"),
                 ("notifier", "start message in flight"))


@dataclass(frozen=True)
class Trial:
    number: int
    service: str
    moment: Moment | None  # None: a random trial, killed ``delay_s`` after the run was started
    failing: bool
    gate: bool = False
    delay_s: float = 0.0

    @property
    def label(self) -> str:
        kind = "failing plan" if self.failing else "plan"
        where = self.moment.name if self.moment else f"random, {self.delay_s:.1f} s into the run"
        return f"{self.service} @ {where} ({kind})"


def trials_for(count: int, rng: random.Random, targeted_only: bool, smoke: bool, only: str = "") -> list[Trial]:
    """The targeted trials first, then random ones up to ``count`` (``smoke``: only the CI form's few cases;
    ``only``: the targeted trials whose ``service @ moment`` contains it)."""
    moments = [m for m in TARGETED if (not smoke or (m.service, m.name) in SMOKE_MOMENTS)
               and only in f"{m.service} @ {m.name}"]
    trials = [Trial(i + 1, m.service, m, m.failing, m.gate, m.delay_s) for i, m in enumerate(moments[:count])]
    while not targeted_only and len(trials) < count:
        failing = rng.random() < 1 / 3
        trials.append(Trial(len(trials) + 1, rng.choice(SERVICES), None, failing,
                            delay_s=round(rng.uniform(0.0, RANDOM_KILL_WITHIN_S[failing]), 2)))
    return trials


# --- what a run must leave: messages due, checks -----------------------------------------------------------------

MESSAGE_KINDS = {  # a message's kind from its text (the notifier's default templates), for one plan name
    "run_started": ("🚀 Starting {name} ",),
    "stage_passed": ("✅ {name} stage ",),
    # a run that fails before its first traffic shift is stopped, not rolled back (the notifier says which)
    "rollback_started": ("🚨 {name} Production Rollback Triggered", "🛑 {name} Production go-live stopped "),
    "run_succeeded": ("✅ {name} Production Deployment SUCCESS",),
    "run_rolled_back": ("↩️ {name} Production rolled back", "🛑 {name} Production go-live failed "),
    "needs_human": ("🆘 {name} Production rollback needs a human",),
}


def message_key(text: str, name: str) -> str | None:
    """``run_started``, ``stage_passed:2``, ...: which of the run's messages ``text`` is, or None if another run's."""
    for kind, prefixes in MESSAGE_KINDS.items():
        for prefix in (p.format(name=name) for p in prefixes):
            if text.startswith(prefix):
                if kind == "stage_passed":
                    number = re.match(r"(\d+) of", text[len(prefix):])
                    return f"stage_passed:{number.group(1) if number else '?'}"
                return kind
    return None


def messages_due(events: list[Event]) -> Counter:
    """The messages a run's events call for under the default routes, each once: its start; each stage the run
    moved past (a step of a later stage or a later phase began, or the run succeeded in it) before any rollback;
    the rollback alert; the final message. Written from the runbook's Communication Plan, not from the notifier."""
    due: Counter = Counter()
    stage, rolling_back = 0, False
    for e in events:
        if e["type"] == EVT + "run_started.v1":
            due["run_started"] = 1
        elif (name := step(e)) and not rolling_back:
            match = re.match(r"stage(\d+):", name)
            number = int(match.group(1)) if match else None
            if stage and (number is None or number > stage):
                due[f"stage_passed:{stage}"] = 1
            stage = number or 0
        elif e["type"] == EVT + "step_failed.v1":
            due["rollback_started"] = 1
            rolling_back = True
        elif e["type"] == EVT + "run_finished.v1":
            outcome = e["data"]["outcome"]
            if outcome == "succeeded" and stage and not rolling_back:
                due[f"stage_passed:{stage}"] = 1
            due[{"succeeded": "run_succeeded", "rolled_back": "run_rolled_back"}.get(outcome, "needs_human")] = 1
    return due


@dataclass
class Result:
    """What one trial found."""

    trial: Trial
    outcome: str | None = None
    exit_code: int | None = None
    weight: int | None = None
    index: str = ""  # present | absent | invalid
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0
    stuck: bool = False
    restored_s: float | None = None
    killed: bool = False
    seconds: float = 0.0

    @property
    def correct(self) -> bool:
        return not self.problems and not self.duplicates and not self.lost and not self.stuck


def judge_state(result: Result, failing: bool) -> None:
    """The terminal state the plan calls for: outcome and exit code, weight read back, the index."""
    expected = "rolled_back" if failing else "succeeded"
    if result.stuck:
        result.problems.append("stuck: no run_finished")
        return
    if result.outcome != expected:
        result.problems.append(f"outcome {result.outcome}, expected {expected}")
    if result.exit_code != (0 if expected == "succeeded" else 1):
        result.problems.append(f"golive run exit code {result.exit_code}")
    if result.weight != (100 if expected == "succeeded" else 0):
        result.problems.append(f"canary weight read back {result.weight}")
    if result.index != ("present" if expected == "succeeded" else "absent"):
        result.problems.append(f"index {result.index}")


def judge_side_effects(done: Counter, history: list[tuple[str, str]]) -> list[str]:
    """Commands executed more than once (``command.done`` per command id), builds or drops recorded twice."""
    found = [f"command {cid} done {n} times" for cid, n in done.items() if n > 1]
    effects = Counter(f"{op}:{action}" for op, action in history if action in ("built", "rebuilt_invalid", "dropped"))
    found += [f"migrator history {what} {n} times" for what, n in effects.items() if n > 1]
    return found


def judge_messages(due: Counter, received: Counter) -> tuple[list[str], list[str]]:
    """(lost, duplicated): each message due must arrive exactly once, and nothing else of the run may arrive."""
    lost = [k for k in due if received[k] == 0]
    duplicated = [f"{k} x{n}" for k, n in received.items() if n > 1 or k not in due]
    return lost, duplicated


# --- the shell: one stack, the trials -------------------------------------------------------------------------


def event_time(event: Event) -> float:
    return datetime.fromisoformat(event["time"]).timestamp()


class Stack:
    """nats-server, PostgreSQL, the webhook receiver and the five supervised services, for every trial."""

    def __init__(self, base: Path, rows: int, echo: Callable[[str], None]) -> None:
        self.base, self.rows, self.echo = base, rows, echo
        self.lock = threading.Lock()  # the supervisor thread and the trials both touch the processes
        self._stop = threading.Event()

    def __enter__(self) -> Stack:
        self.nats = EmbeddedNats(self.base / "nats").start()
        try:
            self.pg = EmbeddedPostgres(self.base / "postgres").start()
            create_database(self.pg.url, "golive")
            self.database_url = self.pg.url_for("golive")
            seed(self.database_url, self.rows)
            self.sink = WebhookSink().start()
            self.state_dir = self.base / "state"
            self.env = service_env(self.nats.url, self.state_dir, {
                "GOLIVE_LEASE_TTL_S": str(LEASE_TTL_S), "GOLIVE_ARTIFACTS_DIR": str(self.base / "artifacts"),
                DATABASE_ENV: self.database_url, WEBHOOK_ENV: self.sink.url,
            })
            self.logs = self.base / "logs"
            self.procs = ServiceProcesses(self.env, self.logs).start()
            asyncio.run(wait_until_ready(Settings(nats_url=self.nats.url), SERVICES, self.procs, timeout_s=120))
            policy = RestartPolicy(base_s=0.2, cap_s=1.0, max_crashes=1000, period_s=60.0)
            self.supervisor = Supervisor(self.procs, lambda line: None, policy=policy)
            self._thread = threading.Thread(target=self._supervise, daemon=True)
            self._thread.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _supervise(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                self.supervisor.check()

    def kill(self, service: str) -> None:
        with self.lock:
            proc = self.procs.procs[service]
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)

    def signal(self, service: str, sig: int) -> None:
        with self.lock:
            proc = self.procs.procs[service]
            if proc.poll() is None:
                os.kill(proc.pid, sig)

    def wait_all_up(self, timeout_s: float = 60.0) -> None:
        """Until every service runs again (restarted after a kill) and had time to start."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                down = [k for k, p in self.procs.procs.items() if p.poll() is not None]
            if not down:
                break
            time.sleep(0.1)
        time.sleep(2.0)  # a restarted service imports and connects before it takes work

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for part in ("_thread",):
            if hasattr(self, part):
                getattr(self, part).join(5)
        if hasattr(self, "procs"):
            self.procs.stop(timeout_s=10)
        if hasattr(self, "sink"):
            self.sink.stop()
        if hasattr(self, "pg"):
            self.pg.stop()
        self.nats.stop()


def write_plan(path: Path, name: str, index: str, failing: bool, gate: bool) -> Path:
    plan = yaml.safe_load(SKELETON.read_text())
    plan["name"] = name
    plan["migrations"]["statements"] = [
        {"name": index, "sql": f"CREATE INDEX CONCURRENTLY {index} ON stripe_events(created_at)"}]
    plan["smoke"][0]["duration"] = "2s"
    plan["smoke"][0]["thresholds"]["p95_ms"] = 400  # two shared, busy cores: this is about the kills
    for stage in plan["canary"]["stages"]:
        stage["hold"] = "2s"
    if failing:  # nothing answers in 1 microsecond: stage 2's hold fails and the run rolls back
        plan["canary"]["stages"][1]["checks"][0]["thresholds"]["p95_ms"] = 0.001
    if gate:
        plan["canary"]["stages"][2]["approval"] = True
    plan["lock_in"] = {"promote": True}
    path.write_text(yaml.safe_dump(plan, allow_unicode=True))
    return path


def read_events(run: subprocess.Popen, into: queue.Queue) -> None:
    for line in run.stdout:
        if line.startswith("{"):
            try:
                into.put(json.loads(line))
            except json.JSONDecodeError:
                pass
    into.put(None)


class KillSwitch:
    """Decides, event by event and tick by tick, when a trial freezes, kills and approves (the moment's rules)."""

    def __init__(self, stack: Stack, trial: Trial, run_id: str, started: float) -> None:
        self.stack, self.trial, self.moment, self.run_id = stack, trial, trial.moment, run_id
        self.kill_at: float | None = None if self.moment else started + trial.delay_s  # monotonic
        self.killed_at: float | None = None  # wall clock, to compare with the events' times
        self.frozen: str | None = None
        self.approve_due = False
        self.approved = False
        self.finished: float | None = None  # monotonic time run_finished was seen
        self.log = stack.logs / f"{trial.service}.log"
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0

    @property
    def awaits_message(self) -> bool:
        """A message to kill the notifier on may come after the run's end (the run's last message)."""
        return bool(self.moment and self.moment.in_flight) and self.killed_at is None

    def on_event(self, event: Event) -> None:
        moment = self.moment
        if moment and moment.freeze and self.frozen is None and self.killed_at is None and moment.freeze[1](event):
            self.frozen = moment.freeze[0]
            self.stack.signal(self.frozen, signal.SIGSTOP)
        if moment and moment.when and self.kill_at is None and self.killed_at is None and moment.when(event):
            self.kill_at = time.monotonic() + moment.delay_s
        if self.trial.gate and step(event) == "stage3:gate":
            self.approve_due = True
        if event["type"] == EVT + "run_finished.v1":
            self.finished = time.monotonic()

    def tick(self) -> None:
        moment, sink = self.moment, self.stack.sink
        if moment and moment.in_flight and self.killed_at is None and sink.held():
            self.kill_at = time.monotonic()
        if moment and moment.logged and self.kill_at is None and self.logged(moment.logged):
            self.kill_at = time.monotonic() + moment.delay_s
        due = self.kill_at is not None and time.monotonic() >= self.kill_at
        if due and self.killed_at is None and (self.finished is None or self.awaits_message):
            self.stack.kill(self.trial.service)
            self.killed_at = time.time()
            self.thaw()
            if moment and moment.in_flight:
                sink.hold_if = None
                sink.drop_held()  # the post never reached the receiver: its connection died with the sender
        gate_kill_pending = self.trial.service == "coordinator" and moment and moment.gate and self.killed_at is None
        if self.approve_due and not self.approved and not gate_kill_pending:
            self.approved = approve(self.stack, self.run_id)

    def logged(self, name: str) -> bool:
        """Whether the victim's log has shown ``name`` for this run since the trial began (read as it grows)."""
        with open(self.log, "rb") as log:
            log.seek(self.log_offset)
            chunk = log.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.log_offset += len(complete)
        return any(f'"run_id": "{self.run_id}"' in line and f'"event": "{name}"' in line
                   for line in complete.decode(errors="replace").splitlines())

    def done(self) -> bool:
        if self.finished is None:
            return False
        return not self.awaits_message or time.monotonic() - self.finished > MESSAGES_WAIT_S

    def thaw(self) -> None:
        if self.frozen:
            self.stack.signal(self.frozen, signal.SIGCONT)
            self.frozen = None


def run_trial(stack: Stack, trial: Trial, prefix: str, stuck_after_s: float) -> Result:
    """One `golive run` with one kill, then every check on what it left."""
    result = Result(trial)
    run_id, deployment = f"{prefix}-t{trial.number:02d}", f"dpl-{prefix}-t{trial.number:02d}"
    name, index = f"chaos-{prefix}-t{trial.number:02d}", f"idx_chaos_{prefix}_t{trial.number:02d}"
    plan = write_plan(stack.base / f"{run_id}.yaml", name, index, trial.failing, trial.gate)
    sink = stack.sink
    if trial.moment and trial.moment.in_flight:
        kind = trial.moment.in_flight
        sink.hold_if = lambda body: (message_key(body.get("text", ""), name) or "").split(":")[0] == kind
    started = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "golive", "run", str(plan), "--run-id", run_id, "--json",
                            "--deploy-id", deployment, "--previous-deploy-id", "dpl-stable"],
                           env=stack.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=read_events, args=(run, printed), daemon=True).start()
    events: list[Event] = []
    switch = KillSwitch(stack, trial, run_id, started)
    closed = False  # golive run's output ended
    try:
        while time.monotonic() - started < stuck_after_s and not switch.done():
            closed = drain(printed, events, switch.on_event, wait_s=0.05) or closed
            if closed:
                time.sleep(0.05)
            switch.tick()
    finally:
        switch.thaw()
        sink.hold_if = None
        sink.release()  # a message held for a kill that never came (one dropped at the kill stays dropped)
    result.stuck = switch.finished is None
    result.killed = switch.killed_at is not None
    try:
        run.wait(30 if not result.stuck else 1)
    except subprocess.TimeoutExpired:
        if not result.stuck:
            result.problems.append("golive run did not exit within 30 s of the run's end")
    if run.poll() is None:
        run.kill()
        run.wait(5)
    result.exit_code = None if result.stuck else run.returncode
    while not closed:  # what it printed before it exited
        closed = drain(printed, events, lambda e: None, wait_s=2.0) or printed.empty()
    judge_run(stack, result, events, run_id, deployment, name, index, switch.killed_at)
    result.seconds = time.monotonic() - started
    return result


def drain(printed: queue.Queue, events: list[Event], on_event: Callable[[Event], None], wait_s: float) -> bool:
    """Take what `golive run` printed so far into ``events``; True once its output has ended."""
    try:
        event = printed.get(timeout=wait_s)
    except queue.Empty:
        return False
    while True:
        if event is None:
            return True
        events.append(event)
        on_event(event)
        try:
            event = printed.get_nowait()
        except queue.Empty:
            return False


def judge_run(stack: Stack, result: Result, events: list[Event], run_id: str, deployment: str, name: str, index: str,
              killed_at: float | None) -> None:
    """Every check on what the run left: state, side effects, messages, time to traffic restored."""
    ends = [e["data"] for e in events if e["type"] == EVT + "run_finished.v1"]
    result.outcome = ends[-1]["outcome"] if ends else None
    if len(ends) > 1:
        result.problems.append(f"{len(ends)} run_finished events")
    if not result.killed:
        result.problems.append("the kill point was never reached")
    result.weight = read_weight(stack.state_dir, deployment)
    result.index = index_state(stack.database_url, index)
    judge_state(result, result.trial.failing)
    side_effects = judge_side_effects(commands_done(stack.logs, run_id), history(stack.database_url, run_id))
    due = messages_due(events)
    sink = stack.sink
    sink.wait_for(lambda got: all(received_keys(got, name)[k] >= 1 for k in due), timeout_s=MESSAGES_WAIT_S)
    time.sleep(1.0)  # a duplicate would come right behind
    lost, duplicated = judge_messages(due, received_keys(sink.received, name))
    result.duplicates = len(side_effects) + len(duplicated)
    result.lost = len(lost)
    result.problems += side_effects + [f"message duplicated: {d}" for d in duplicated]
    result.problems += [f"message lost: {k}" for k in lost]
    result.restored_s = restored_after(events, killed_at)


def approve(stack: Stack, run_id: str) -> bool:
    """Open the gate the run waits at (as the operator would); tried again while the run is not there yet."""
    for _ in range(20):
        done = subprocess.run([sys.executable, "-m", "golive", "approve", run_id], env=stack.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0:
            return True
        time.sleep(0.5)
    return True  # the run rolls back at its gate's timeout: the trial's outcome says so


def restored_after(events: list[Event], kill_wall: float | None) -> float | None:
    """Seconds from the failure (the later of the kill and the stage's failure) to traffic_rolled_back; None when
    the run did not roll back or its traffic was restored before the kill."""
    failed = [event_time(e) for e in events if e["type"] == EVT + "step_failed.v1"]
    restored = [event_time(e) for e in events if e["type"].endswith(".traffic_rolled_back.v1")]
    if not failed or not restored or kill_wall is None or restored[0] < kill_wall:
        return None  # no rollback, or traffic was back before the kill
    return restored[0] - max(kill_wall, failed[0])


def received_keys(received: list[dict], name: str) -> Counter:
    return Counter(k for body in received if (k := message_key(body.get("text", ""), name)))


def read_weight(state_dir: Path, deployment: str) -> int | None:
    try:
        state = json.loads((state_dir / "traffic-dry-run.json").read_text())
    except FileNotFoundError:
        return None
    entry = state.get(deployment)
    return int(entry["weight"]) if entry else None


def index_state(database_url: str, index: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                           "WHERE c.relname = %s", (index,)).fetchone()
    return "absent" if row is None else ("present" if row[0] else "invalid")


def commands_done(log_dir: Path, run_id: str) -> Counter:
    """Commands of ``run_id`` the services finished, by command id, from their own logs (all their lives)."""
    done: Counter = Counter()
    for log in log_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == "command.done" and entry.get("run_id") == run_id:
                done[entry["command_id"]] += 1
    return done


def history(database_url: str, run_id: str) -> list[tuple[str, str]]:
    """The migrator's succeeded history rows of the run: (operation, action), oldest first."""
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass('golive_migrations') IS NOT NULL").fetchone()[0]
        if not exists:
            return []
        return [tuple(r) for r in conn.execute(
            "SELECT operation, action FROM golive_migrations WHERE run_id = %s AND status = 'succeeded' ORDER BY id",
            (run_id,))]


def describe(result: Result) -> str:
    t = result.trial
    verdict = "ok" if result.correct else "FAILED"
    restored = f", restored {result.restored_s:.2f} s after the failure" if result.restored_s is not None else ""
    line = (f"trial {t.number:2d} {verdict:6} {t.label}: outcome {result.outcome}, exit {result.exit_code}, "
            f"weight {result.weight}, index {result.index}, duplicates {result.duplicates}, lost {result.lost}, "
            f"stuck {int(result.stuck)}{restored} [{result.seconds:.0f} s]")
    return line + "".join(f"\n    - {p}" for p in result.problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targeted-only", action="store_true", help="no random trials")
    parser.add_argument("--smoke", action="store_true", help="only the CI form's cases (coordinator before the last "
                        "answer, traffic during rollback, notifier with a message in flight)")
    parser.add_argument("--only", default="", help="only the targeted trials whose 'service @ moment' contains this")
    parser.add_argument("--rows", type=int, default=100_000, help="rows seeded in stripe_events")
    parser.add_argument("--stuck-after", type=float, default=120.0, help="seconds without run_finished: stuck")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs) afterwards")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    trials = trials_for(args.trials, rng, args.targeted_only, args.smoke, args.only)
    base = Path(tempfile.mkdtemp(prefix="golive-chaos-"))
    print(f"chaos: {len(trials)} trials (seed {args.seed}), stack under {base}", flush=True)
    results: list[Result] = []
    with Stack(base, args.rows, print) as stack:
        for trial in trials:
            stack.wait_all_up()
            result = run_trial(stack, trial, f"s{args.seed}", args.stuck_after)
            results.append(result)
            print(describe(result), flush=True)
        restarts = {k: int(v) for k, v in _restarts(stack.supervisor).items()}
    restored = [r.restored_s for r in results if r.restored_s is not None]
    if restored:
        slowest = max(results, key=lambda r: r.restored_s if r.restored_s is not None else -1)
        print(f"failure to traffic restored: {len(restored)} rollbacks, median "
              f"{sorted(restored)[len(restored) // 2]:.2f} s, slowest {max(restored):.2f} s "
              f"(trial {slowest.trial.number}: {slowest.trial.label})")
    print(f"services restarted by the supervisor: {restarts}")
    if args.keep:
        print(f"logs: {base / 'logs'}")
    correct = sum(r.correct for r in results)
    duplicates, lost, stuck = sum(r.duplicates for r in results), sum(r.lost for r in results), \
        sum(r.stuck for r in results)
    print(f"chaos: {len(results)} trials, correct {correct}/{len(results)}, duplicates {duplicates}, lost {lost}, "
          f"stuck {stuck}")
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0 if correct == len(results) and not (duplicates or lost or stuck) else 1


def _restarts(supervisor: Supervisor) -> dict[str, float]:
    return {s.labels["service"]: s.value for metric in supervisor.registry.collect() for s in metric.samples
            if s.name.endswith("_total")}


if __name__ == "__main__":
    sys.exit(main())
