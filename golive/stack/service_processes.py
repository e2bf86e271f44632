"""The five services as child processes (`python -m golive serve NAME`), the environment they are given, and
the wait until each is ready to take work: for `golive up`, the tests and the benchmarks.

The environment names below are the stack's contract with the plans: the runbook plan reads its database from
``$GOLIVE_DATABASE_URL``, its Slack webhook from ``$GOLIVE_SLACK_WEBHOOK_URL`` and so on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import nats
from nats.js.errors import NotFoundError

from golive.shared.settings import Settings, connect_options
from golive.shared.subjects import SERVICES

DATABASE_ENV = "GOLIVE_DATABASE_URL"
WEBHOOK_ENV = "GOLIVE_SLACK_WEBHOOK_URL"
ENVOY_ADMIN_ENV = "GOLIVE_ENVOY_ADMIN_URL"  # a plan's envoy provider names it: `admin_url_env: GOLIVE_ENVOY_ADMIN_URL`
REPLICA_ENV = "GOLIVE_REPLICA_URL"  # the read replica the guards watch (a streaming standby of the embedded server)
# the demo's Prometheus (golive/demo/prometheus.py), when its binary is found: the runbook's user_traffic check reads it
PROMETHEUS_ENV = "GOLIVE_PROMETHEUS_URL"
APP_URL_ENV = "GOLIVE_APP_URL"  # the app's production address (Envoy's listener): http probes use ${GOLIVE_APP_URL}


@dataclass
class ServiceProcesses:
    """The services as child processes (`python -m golive serve NAME`), each in its own session."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # key (service and instance) -> service
    # How a service's process is started. The tests put a fork server here (tests/forkserver.py): the same
    # `python -m golive serve NAME`, forked from an interpreter that imported the services once.
    launch: ClassVar[Callable[..., Any]] = subprocess.Popen

    def start(self, names: tuple[str, ...] = SERVICES) -> ServiceProcesses:
        for name in names:
            self.start_one(name)
        return self

    def start_one(self, name: str, instance: str = "") -> subprocess.Popen:
        """Start one instance; its metrics port is one it binds itself (0): a port found free here could be taken
        by another process before the service binds it. wait_until_ready learns it (``metrics_ports``)."""
        key = f"{name}{instance}"
        self.names[key] = name
        return self._spawn(key, 0)

    def restart(self, key: str) -> subprocess.Popen:
        """Start the service ``key`` again, on the same metrics port (Prometheus keeps scraping it), same log."""
        return self._spawn(key, self.metrics_ports[key])

    def _spawn(self, key: str, port: int) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port_file = self._port_file(key)
        port_file.unlink(missing_ok=True)  # the port this start binds, written by the service once it serves
        log = open(self.log_dir / f"{key}.log", "ab")
        proc = ServiceProcesses.launch(
            [sys.executable, "-m", "golive", "serve", self.names[key], "--metrics-port", str(port),
             "--metrics-port-file", str(port_file)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.procs[key] = proc
        if port:  # a restart: the port it had
            self.metrics_ports[key] = port
        else:  # named by the service once it serves
            self.metrics_ports.pop(key, None)
        return proc

    def learn_metrics_ports(self) -> set[str]:
        """Read the metrics port each started instance wrote (``--metrics-port-file``) into ``metrics_ports``;
        returns the instances that have not named one yet."""
        for key in set(self.procs) - set(self.metrics_ports):
            try:
                self.metrics_ports[key] = int(self._port_file(key).read_text())
            except (FileNotFoundError, ValueError):  # not serving yet (the file is replaced whole: never half)
                pass
        return set(self.procs) - set(self.metrics_ports)

    def _port_file(self, key: str) -> Path:
        return self.log_dir / f"{key}.metrics-port"

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM all (they finish or hand back their work), then wait; SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:  # hung: its threads' stacks to its log (golive/serve.py), then kill
                proc.send_signal(signal.SIGUSR1)
                time.sleep(0.5)
                proc.kill()
                proc.wait(5)

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}


def service_env(nats_url: str, state_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the bus, the state directory and ``extra`` set for a service process."""
    env = dict(os.environ)
    env.update({"GOLIVE_NATS_URL": nats_url, "GOLIVE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


async def wait_until_ready(settings: Settings, services: Iterable[str], procs: ServiceProcesses | None = None,
                           timeout_s: float = 30.0) -> None:
    """Wait until each service's durable consumer exists (it is ready to take work) and, with ``procs``, until each
    of its instances has named its metrics port; fail if one exits."""
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
        unnamed: set[str] = set()
        while pending or unnamed:
            if procs and (dead := procs.exited()):
                raise RuntimeError(f"services exited during start: {dead} (logs in {procs.log_dir})")
            for stream, name in list(pending):
                try:
                    await js.consumer_info(stream, name)
                    pending.discard((stream, name))
                except (NotFoundError, nats.errors.TimeoutError):  # not yet; on a cluster, its stream may be
                    pass                                          # electing a leader (the API then does not answer)
            unnamed = procs.learn_metrics_ports() if procs else set()  # each says its port once it serves
            if pending or unnamed:
                if time.monotonic() > deadline:
                    waiting = sorted(n for _, n in pending) + sorted(f"{key} (metrics port)" for key in unnamed)
                    raise TimeoutError(f"services not ready after {timeout_s:.0f} s: {waiting}")
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


