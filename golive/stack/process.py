"""The stack's child processes: a free loopback port, waiting until one listens, stopping a process, and the
error every embedded server raises when it cannot start.

Every server golive embeds (stack/nats_server.py, postgres.py, envoy_proxy.py) runs as a child process in its own
session on a free loopback port and is stopped by its PID, never by name: this machine may run others. Those started
from a binary with a log file of their own share ``ChildServer``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self


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


class ChildServer(Started):
    """A server run as a child process: ``start()`` calls ``launch`` (its own session, its output appended to a log
    file) and waits with ``listening``; ``stop()`` ends it by its PID (SIGTERM, SIGKILL after ``stop_timeout_s``)."""

    proc: subprocess.Popen | None = None
    log_file: Path | None = None
    stop_timeout_s = 10.0

    def launch(self, argv: list[str], log_file: Path, **popen: Any) -> subprocess.Popen:
        """Start ``argv`` in a session of its own (a Ctrl-C in our terminal is ours to pass on, not its to take),
        stdout and stderr appended to ``log_file``."""
        self.log_file = log_file
        with open(log_file, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)
        return self.proc

    def listening(self, port: int, timeout_s: float, what: str) -> None:
        """Wait until the server listens on ``port``; if it exits or time runs out first, stop it (no half-started
        server is left behind) and raise EmbeddedError with the end of its log, which says why."""
        try:
            wait_for_port(port, timeout_s, self.proc, what)
        except EmbeddedError as exc:
            said = self.log_tail()
            self.stop()
            raise EmbeddedError(f"{exc}:\n{said}" if said else str(exc)) from None
        except BaseException:
            self.stop()
            raise

    def log_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` of the server's log ("" before it has one)."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, self.stop_timeout_s)
            self.proc = None


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
