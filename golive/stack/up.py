"""`golive up`: the whole stack on one machine, from wheels, with nothing to install by hand.

nats-server with JetStream, PostgreSQL (seeded with the runbook's tables) and a streaming replica, the demo app's
stable and canary deployments behind Envoy, a local webhook receiver standing in for Slack, and the five services
as child processes, restarted when they crash (supervise.py). Prometheus (Debian's binary; no wheel exists) scrapes
both deployments when it is installed, for the runbook's check of real user traffic; without it the stack says so
and carries on (that check is then skipped). Everything listens on loopback, keeps its data under
the state directory, and stops on Ctrl-C. It needs no file of the repository: it runs from any directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry, start_http_server

from golive.demo.app import DemoApp
from golive.demo.data import DEMO_ROWS, create_database, seed_demo
from golive.demo.prometheus import HOW_TO_GET_IT, DemoPrometheus, prometheus_binary
from golive.plans import RUNBOOK, SKELETON
from golive.shared.settings import STACK_FILE, Settings
from golive.shared.subjects import SERVICES
from golive.stack.envoy_proxy import EmbeddedEnvoy
from golive.stack.nats_server import EmbeddedNats
from golive.stack.postgres import EmbeddedPostgres
from golive.stack.replica import StreamingReplica
from golive.stack.service_processes import (
    APP_URL_ENV,
    DATABASE_ENV,
    ENVOY_ADMIN_ENV,
    PROMETHEUS_ENV,
    REPLICA_ENV,
    WEBHOOK_ENV,
    ServiceProcesses,
    service_env,
    wait_until_ready,
)
from golive.stack.supervise import Supervisor
from golive.stack.webhook_sink import WebhookSink, slack_line

T = TypeVar("T")
# a demo window is 2 s at the least (golive/plans/rehearsal.py): a rate over it needs several scrapes
PROMETHEUS_SCRAPE_S = 0.5


class _StopRequested(Exception):
    """Ctrl-C (the ``stop`` event) while the stack was still starting: what started is stopped again at once."""


def run_stack(state_dir: Path, echo: Callable[[str], None], stop: threading.Event, seed_rows: int = DEMO_ROWS,
              on_ready: Callable[[dict], None] | None = None, on_slack: Callable[[dict], None] | None = None) -> list[str]:
    """Start everything, write the stack file, wait for ``stop``, stop everything in reverse; returns what it
    stopped, in the order it had started it. A ``stop`` while it starts ends the start there (nothing more
    starts; what did is stopped).

    ``on_slack`` gets each message the local Slack receiver takes (default: the whole message is echoed, as text)."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stack_file = state_dir / STACK_FILE
    started: list[str] = []

    def unless_stopped() -> None:
        if stop.is_set():
            raise _StopRequested

    try:
        with ExitStack() as running:
            def start(what: str, part: T) -> T:  # started now, stopped with the rest (in reverse) on the way out
                unless_stopped()
                entered = running.enter_context(part)
                started.append(what)
                return entered

            nats = start("nats-server", EmbeddedNats(state_dir / "nats"))
            pg = start("PostgreSQL", EmbeddedPostgres(state_dir / "postgres"))
            unless_stopped()
            create_database(pg.url, "golive")
            db_url = pg.url_for("golive")
            begun = time.monotonic()
            seed_demo(db_url, seed_rows)
            echo(f"seeded     {seed_rows:,} rows in each runbook table in {time.monotonic() - begun:.1f} s")
            replica = start("the streaming replica", StreamingReplica(pg, state_dir / "replica"))
            sink = start("the Slack stand-in", WebhookSink(
                on_message=on_slack or (lambda body: echo(slack_line(body)))))
            # the two deployments of the demo app (golive/demo/app.py) behind Envoy, split by runtime weights
            stable = start("the demo app (stable)", DemoApp("stable", db_url, state_dir / "logs"))
            canary = start("the demo app (canary)", DemoApp("canary", db_url, state_dir / "logs"))
            envoy = start("Envoy", EmbeddedEnvoy(state_dir / "envoy", stable.address, canary.address))
            prometheus = None
            if prometheus_binary() is not None:  # real user traffic by deployment, as the prometheus probe reads it
                prometheus = start("Prometheus", DemoPrometheus(state_dir / "prometheus", [
                    f"127.0.0.1:{stable.port}", f"127.0.0.1:{canary.port}"], scrape_s=PROMETHEUS_SCRAPE_S))
            urls = {DATABASE_ENV: db_url, WEBHOOK_ENV: sink.url, ENVOY_ADMIN_ENV: envoy.admin_url, APP_URL_ENV: envoy.url,
                    REPLICA_ENV: replica.url_for("golive")}
            if prometheus is not None:
                urls[PROMETHEUS_ENV] = prometheus.url
            env = service_env(nats.url, state_dir, urls)
            unless_stopped()
            services = ServiceProcesses(env, state_dir / "logs").start()
            running.callback(services.stop)
            started.append(f"the {len(SERVICES)} services")
            supervisor_registry = CollectorRegistry()  # golive up's own metrics: restarts of its services
            metrics_server, _thread = start_http_server(0, addr="127.0.0.1", registry=supervisor_registry)
            running.callback(metrics_server.shutdown)
            running.callback(stack_file.unlink, missing_ok=True)
            if not asyncio.run(_ready_unless_stopped(Settings(nats_url=nats.url), services, stop)):
                raise _StopRequested
            stack = {
                "nats_url": nats.url, "postgres_port": pg.port, "database_env": DATABASE_ENV,
                "webhook": sink.url, "metrics": services.metrics_ports, "pid": os.getpid(),
                "stack_metrics": metrics_server.server_port,
                "pids": {name: proc.pid for name, proc in services.procs.items()},
                "proxy": envoy.url, "envoy_admin": envoy.admin_url,
                "apps": {"stable": stable.url, "canary": canary.url}, "logs": str(state_dir / "logs"),
                "prometheus": prometheus.url if prometheus is not None else None,
            }
            stack_file.write_text(json.dumps(stack, indent=2))
            echo(f"nats       {nats.url}  (JetStream, data in {state_dir / 'nats'})")
            echo(f"postgres   127.0.0.1:{pg.port}  database golive (url in ${DATABASE_ENV} for the services)")
            echo(f"replica    127.0.0.1:{replica.server.port}  streaming standby (url in ${REPLICA_ENV})")
            echo(f"webhook    {sink.url}  (stands in for Slack; messages are printed here)")
            echo(f"envoy      {envoy.url} (in ${APP_URL_ENV}) -> app stable 127.0.0.1:{stable.port}, canary "
                 f"127.0.0.1:{canary.port}; /deployments/NAME/... reaches one  (admin {envoy.admin_url} in ${ENVOY_ADMIN_ENV})")
            if prometheus is not None:
                echo(f"prometheus {prometheus.url} (in ${PROMETHEUS_ENV}) scraping both deployments every "
                     f"{PROMETHEUS_SCRAPE_S:g} s: the runbook's user_traffic check reads it")
            else:
                echo(f"prometheus not found, so the runbook's user_traffic check is skipped: {HOW_TO_GET_IT}")
            for name, port in services.metrics_ports.items():
                echo(f"{name:<10} pid {services.procs[name].pid}  metrics http://127.0.0.1:{port}/metrics")
            echo(f"stack      pid {os.getpid()}  metrics http://127.0.0.1:{metrics_server.server_port}/metrics "
                 "(services restarted after a crash)")
            echo(f"logs       {state_dir / 'logs'}")
            if on_ready:
                on_ready(stack)
            else:
                echo(ready_message())
            supervisor = Supervisor(services, echo, registry=supervisor_registry)
            while not stop.wait(0.25):
                if supervisor.check():  # the stack file names the pids alive now
                    stack["pids"] = {name: proc.pid for name, proc in services.procs.items()}
                    stack_file.write_text(json.dumps(stack, indent=2))
                if supervisor.gave_up:
                    break
    except _StopRequested:
        pass
    return started


async def _ready_unless_stopped(settings: Settings, services: ServiceProcesses, stop: threading.Event) -> bool:
    """Whether every service got ready before ``stop`` (Ctrl-C while waiting: False within a quarter second)."""
    waiting = asyncio.ensure_future(wait_until_ready(settings, SERVICES, services))
    try:
        while not waiting.done():
            await asyncio.wait([waiting], timeout=0.25)
            if stop.is_set() and not waiting.done():
                return False
        waiting.result()  # a service that could not start: its error
        return True
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)


def ready_message() -> str:
    """What to do once the stack is up; the plans it names are the ones golive ships (absolute paths: the other
    terminal may be in any directory)."""
    return (f"ready: in another terminal, `golive run {SKELETON}`, or the runbook: `golive run {RUNBOOK} "
            "--time-scale 120 --force-window` (then `golive approve RUN` for its backup gate); Ctrl-C here stops "
            "everything")
