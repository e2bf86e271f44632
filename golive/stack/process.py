"""The stack's child processes: a free loopback port, waiting until one listens, stopping a process, and the
error every embedded server raises when it cannot start.

Every server golive embeds (stack/nats_server.py, postgres.py, envoy_proxy.py) runs as a child process in its own
session on a free loopback port and is stopped by its PID, never by name: this machine may run others.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Self


class Started:
    """A server this process starts: ``with server:`` starts it and stops it, whatever happens in the block.
    Subclasses give ``start()`` (returning the server, started) and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message says what to install or look at."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen | None = None, what: str = "server") -> None:
    """Wait until something listens on 127.0.0.1:``port``; EmbeddedError if ``proc`` exits first or time runs out."""
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


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM ``proc`` and wait; SIGKILL it if it has not exited within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
