"""A real HAProxy (Debian's package, `make haproxy`) for the haproxy provider's tests: a frontend on a free loopback
port balancing (weighted random) over a backend of two servers, stable and canary, with its runtime API (level admin) on a UNIX
stats socket in a temp folder and on a loopback TCP port. Started as a child process, stopped by its PID."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from golive.stack.process import ChildServer, free_port

BACKEND = "golive_split"
HOW_TO_GET_IT = "haproxy is not installed: `make haproxy` (Debian: apt-get install haproxy; macOS: brew install haproxy)"


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def haproxy_config(listen_port: int, socket: Path, admin_port: int, stable: tuple[str, int], canary: tuple[str, int],
                   canary_weight: int = 0, balance: str = "random(1)") -> str:
    """The configuration: stable and canary start at 100 - ``canary_weight`` / ``canary_weight``."""
    return f"""global
    stats socket {socket} mode 600 level admin
    stats socket ipv4@127.0.0.1:{admin_port} level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend web
    bind 127.0.0.1:{listen_port}
    default_backend {BACKEND}

backend {BACKEND}
    balance {balance}
    server stable {stable[0]}:{stable[1]} weight {100 - canary_weight}
    server canary {canary[0]}:{canary[1]} weight {canary_weight}
"""


@dataclass
class EmbeddedHAProxy(ChildServer):
    """HAProxy in front of ``stable`` and ``canary`` (host, port); ``url`` is its frontend, ``socket`` its runtime
    API. The socket lives in a short temp path of its own: a UNIX socket path is limited to 107 bytes."""

    stop_timeout_s = 5.0

    stable: tuple[str, int]
    canary: tuple[str, int]
    # random(1): one weighted draw per request, so the split is binomial from the first request after a change
    # (roundrobin, measured: up to ~250 requests in a row to the canary after 10% -> 50%; docs/traffic.md)
    balance: str = "random(1)"
    listen_port: int = 0
    admin_port: int = 0  # the same runtime API on TCP
    folder: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    @property
    def socket(self) -> Path:
        assert self.folder is not None
        return self.folder / "admin.sock"

    def start(self) -> Self:
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError(HOW_TO_GET_IT)
        self.folder = Path(tempfile.mkdtemp(prefix="golive-haproxy-"))
        self.listen_port = free_port()
        while (admin := free_port()) == self.listen_port:  # two free ports, not one free port twice
            pass
        self.admin_port = admin
        config = self.folder / "haproxy.cfg"
        config.write_text(haproxy_config(self.listen_port, self.socket, self.admin_port, self.stable, self.canary, balance=self.balance))
        # -db: stay in the foreground (a child of this process, stopped by its PID); -W off: no master process
        self.launch([binary, "-db", "-f", str(config)], self.folder / "haproxy.log")
        self.listening(self.listen_port, 15, "haproxy")
        self.listening(self.admin_port, 15, "haproxy's runtime API")  # with the socket, before serving
        return self

    def stop(self) -> None:
        super().stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
