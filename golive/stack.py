"""`golive up`: the whole stack on one machine, from wheels, with nothing to install by hand.

nats-server with JetStream, PostgreSQL (seeded with the runbook's tables), a local webhook receiver
standing in for Slack, and the five services as child processes. Everything listens on loopback, keeps
its data under the state directory, and stops on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, start_http_server

from golive.demo_app import DemoApp
from golive.demo_data import DEMO_ROWS, create_database, seed_demo
from golive.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from golive.envoy_proxy import EmbeddedEnvoy
from golive.replica import StreamingReplica
from golive.supervise import Supervisor
from golive.webhook_sink import WebhookSink
from shared.bus import connect_options
from shared.settings import STACK_FILE, Settings
from shared.subjects import SERVICES

DATABASE_ENV = "GOLIVE_DATABASE_URL"
WEBHOOK_ENV = "GOLIVE_SLACK_WEBHOOK_URL"
ENVOY_ADMIN_ENV = "GOLIVE_ENVOY_ADMIN_URL"  # a plan's envoy provider names it: `admin_url_env: GOLIVE_ENVOY_ADMIN_URL`
REPLICA_ENV = "GOLIVE_REPLICA_URL"  # the read replica the guards watch (a streaming standby of the embedded server)
APP_URL_ENV = "GOLIVE_APP_URL"  # the app's production address (Envoy's listener): http probes use ${GOLIVE_APP_URL}


@dataclass
class ServiceProcesses:
    """The services as child processes (`python -m golive serve NAME`), each in its own session."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # key (service and instance) -> service

    def start(self, names: tuple[str, ...] = SERVICES) -> ServiceProcesses:
        for name in names:
            self.start_one(name)
        return self

    def start_one(self, name: str, instance: str = "") -> subprocess.Popen:
        key = f"{name}{instance}"
        self.names[key] = name
        return self._spawn(key, free_port())

    def restart(self, key: str) -> subprocess.Popen:
        """Start the service ``key`` again, on the same metrics port (Prometheus keeps scraping it), same log."""
        return self._spawn(key, self.metrics_ports[key])

    def _spawn(self, key: str, port: int) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{key}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "golive", "serve", self.names[key], "--metrics-port", str(port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.procs[key], self.metrics_ports[key] = proc, port
        return proc

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM all (they finish or hand back their work), then wait; SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}


def service_env(nats_url: str, state_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOLIVE_NATS_URL": nats_url, "GOLIVE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


async def wait_until_ready(settings: Settings, services: Iterable[str], procs: ServiceProcesses | None = None,
                           timeout_s: float = 30.0) -> None:
    """Wait until each service's durable consumer exists (it is ready to take work); fail if one exits."""
    nc = await nats.connect(**await connect_options(settings))  # the user's credentials and its own inbox prefix
    try:
        js = nc.jetstream()
        subjects = settings.subjects
        # the notifier takes no commands: its durable consumer is on the event stream
        pending = {(subjects.command_stream, name) for name in services if name != "notifier"}
        if "coordinator" in services:
            pending.add((subjects.event_stream, "coordinator-events"))
        if "notifier" in services:
            pending.add((subjects.event_stream, "notifier-events"))
        deadline = time.monotonic() + timeout_s
        while pending:
            if procs and (dead := procs.exited()):
                raise RuntimeError(f"services exited during start: {dead} (logs in {procs.log_dir})")
            for stream, name in list(pending):
                try:
                    await js.consumer_info(stream, name)
                    pending.discard((stream, name))
                except (NotFoundError, nats.errors.TimeoutError):  # not yet; on a cluster, its stream may be
                    pass                                          # electing a leader (the API then does not answer)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"services not ready after {timeout_s:.0f} s: {sorted(n for _, n in pending)}")
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


def run_stack(state_dir: Path, echo: Callable[[str], None], stop: threading.Event, seed_rows: int = DEMO_ROWS,
              on_ready: Callable[[dict], None] | None = None, on_slack: Callable[[dict], None] | None = None) -> None:
    """Start everything, write the stack file, wait for ``stop``, stop everything in reverse.

    ``on_slack`` gets each message the local Slack receiver takes (default: its text is echoed)."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stack_file = state_dir / STACK_FILE
    with EmbeddedNats(state_dir / "nats") as nats, EmbeddedPostgres(state_dir / "postgres") as pg:
        create_database(pg.url, "golive")
        db_url = pg.url_for("golive")
        started = time.monotonic()
        seed_demo(db_url, seed_rows)
        echo(f"seeded     {seed_rows:,} rows in each runbook table in {time.monotonic() - started:.1f} s")
        # the two deployments of the demo app (golive/demo_app.py) behind Envoy, split by runtime weights
        with StreamingReplica(pg, state_dir / "replica") as replica, \
                WebhookSink(on_message=on_slack or (lambda body: echo(f"slack <- {body.get('text', '')}"))) as sink, \
                DemoApp("stable", db_url, state_dir / "logs") as stable, \
                DemoApp("canary", db_url, state_dir / "logs") as canary, \
                EmbeddedEnvoy(state_dir / "envoy", stable.address, canary.address) as envoy:
            env = service_env(nats.url, state_dir, {DATABASE_ENV: db_url, WEBHOOK_ENV: sink.url,
                                                    ENVOY_ADMIN_ENV: envoy.admin_url, APP_URL_ENV: envoy.url,
                                                    REPLICA_ENV: replica.url_for("golive")})
            services = ServiceProcesses(env, state_dir / "logs").start()
            supervisor_registry = CollectorRegistry()  # golive up's own metrics: restarts of its services
            metrics_server, _thread = start_http_server(0, addr="127.0.0.1", registry=supervisor_registry)
            try:
                asyncio.run(wait_until_ready(Settings(nats_url=nats.url), SERVICES, services))
                stack = {
                    "nats_url": nats.url, "postgres_port": pg.port, "database_env": DATABASE_ENV,
                    "webhook": sink.url, "metrics": services.metrics_ports, "pid": os.getpid(),
                    "stack_metrics": metrics_server.server_port,
                    "pids": {name: proc.pid for name, proc in services.procs.items()},
                    "proxy": envoy.url, "envoy_admin": envoy.admin_url,
                    "apps": {"stable": stable.url, "canary": canary.url}, "logs": str(state_dir / "logs"),
                }
                stack_file.write_text(json.dumps(stack, indent=2))
                echo(f"nats       {nats.url}  (JetStream, data in {state_dir / 'nats'})")
                echo(f"postgres   127.0.0.1:{pg.port}  database golive (url in ${DATABASE_ENV} for the services)")
                echo(f"replica    127.0.0.1:{replica.server.port}  streaming standby (url in ${REPLICA_ENV})")
                echo(f"webhook    {sink.url}  (stands in for Slack; messages are printed here)")
                echo(f"envoy      {envoy.url} (in ${APP_URL_ENV}) -> app stable 127.0.0.1:{stable.port}, canary "
                     f"127.0.0.1:{canary.port}; /deployments/NAME/... reaches one  (admin {envoy.admin_url} in ${ENVOY_ADMIN_ENV})")
                for name, port in services.metrics_ports.items():
                    echo(f"{name:<10} pid {services.procs[name].pid}  metrics http://127.0.0.1:{port}/metrics")
                echo(f"stack      pid {os.getpid()}  metrics http://127.0.0.1:{metrics_server.server_port}/metrics "
                     "(services restarted after a crash)")
                echo(f"logs       {state_dir / 'logs'}")
                if on_ready:
                    on_ready(stack)
                else:
                    echo("ready: in another terminal, `golive run plans/skeleton.yaml`, or the runbook: `golive run "
                         "plans/supabase-golive.yaml --time-scale 120 --force-window` (then `golive approve RUN` for its "
                         "backup gate); Ctrl-C here stops everything")
                supervisor = Supervisor(services, echo, registry=supervisor_registry)
                while not stop.wait(0.25):
                    if supervisor.check():  # the stack file names the pids alive now
                        stack["pids"] = {name: proc.pid for name, proc in services.procs.items()}
                        stack_file.write_text(json.dumps(stack, indent=2))
                    if supervisor.gave_up:
                        break
            finally:
                services.stop()
                metrics_server.shutdown()
                stack_file.unlink(missing_ok=True)
