"""The tests' fork server: `python -m golive ...` processes forked from one interpreter that imported golive once.

Why: a fresh `python -m golive serve NAME` spends about a CPU-second importing FastStream, pydantic models and its
service before it does anything, and the suite starts several hundred of them (five services per end-to-end test,
every CLI call). On two cores that import time was most of the suite's CPU. Here one clean process (no threads, no
event loop, nothing connected) imports the CLI and every service once, then forks a child per start; each child
sets the environment, working directory, session and standard streams it was given and runs ``golive`` as
``python -m golive`` would (``runpy``, ``__main__``), so the services and the CLI run their real code, each in its
own OS process with its own PID that a test may signal or kill.

A child starts from the server's imported modules: state a module set at import time (none of golive's reads the
environment then) is the server's, not the child's. What a fork does not show is the interpreter's own start:
`golive up` and `golive demo` (tests/e2e/test_stack.py, test_demo.py) and the start-up import test
(tests/unit/test_start_up_imports.py) still start fresh interpreters.

Protocol: one SOCK_SEQPACKET message per start, a JSON request with four file descriptors (stdin, stdout, stderr
and a status pipe); the server answers the child's PID, and when it reaps the child it writes the exit code
(negative: killed by that signal, as Popen's returncode) to the status pipe and closes it.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PRELOAD = ("golive.cli.app", "golive.services.coordinator.service", "golive.services.prober.service", "golive.services.traffic.service",
           "golive.services.notifier.service", "golive.services.migrator.service")


class ForkedProcess:
    """A child of the fork server, with the part of subprocess.Popen's interface the tests use."""

    def __init__(self, pid: int, status: int, stdin: Any, stdout: Any, stderr: Any, args: Sequence[str]) -> None:
        self.pid, self.args = pid, list(args)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._status = status  # read end of the status pipe: the exit code arrives when the server reaps the child

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._status], [], [], 0)[0]:
            self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._status], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self._read_status()
        assert self.returncode is not None
        return self.returncode

    def _read_status(self) -> None:
        with os.fdopen(self._status, "rb") as status:
            text = status.read().decode().strip()
        self.returncode = int(text) if text else -signal.SIGKILL  # the server died: the child is gone with it

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Write ``input``, read stdout and stderr to their end and wait, as Popen.communicate does."""
        if self.stdin is not None:
            if input:
                self.stdin.write(input)
            self.stdin.close()
        out: dict[str, str] = {}
        readers = [threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read()), daemon=True)
                   for n, s in (("stdout", self.stdout), ("stderr", self.stderr)) if s is not None]
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return out.get("stdout"), out.get("stderr")


class ForkServer:
    """The fork server process, and starting `python -m golive ...` through it."""

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        self._dir = tempfile.mkdtemp(prefix="golive-fork-")
        self.socket_path = os.path.join(self._dir, "fork.sock")
        self._server = subprocess.Popen([sys.executable, "-m", "tests.forkserver", self.socket_path, *preload],
                                        stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
        assert self._server.stdout is not None
        ready = self._server.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the tests' fork server did not start (exit {self._server.wait()})")

    def popen(self, args: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
              stdin: Any = None, stdout: Any = None, stderr: Any = None, start_new_session: bool = False,
              text: bool = False) -> ForkedProcess:
        """Start ``[python, -m, golive, ...]`` (``args`` as subprocess.Popen takes them) forked from the server.

        ``stdin``/``stdout``/``stderr``: None (inherit this process's), subprocess.PIPE, subprocess.STDOUT (stderr
        only), subprocess.DEVNULL, or an open file."""
        if list(args[1:3]) != ["-m", "golive"]:
            raise ValueError(f"the fork server starts `python -m golive ...` only, not {args!r}")
        theirs: list[int] = []  # the child's ends, closed here once sent
        streams: list[Any] = []
        for i, spec in enumerate((stdin, stdout, stderr)):
            if spec is None:
                theirs.append(os.dup(i))
                streams.append(None)
            elif spec == subprocess.PIPE:
                r, w = os.pipe()
                mine, child = (w, r) if i == 0 else (r, w)
                theirs.append(child)
                mode = "w" if i == 0 else "r"
                streams.append(io.open(mine, mode, encoding="utf-8") if text else io.open(mine, mode + "b"))
            elif spec == subprocess.STDOUT and i == 2:
                theirs.append(os.dup(theirs[1]))
                streams.append(None)
            elif spec == subprocess.DEVNULL:
                theirs.append(os.open(os.devnull, os.O_RDWR))
                streams.append(None)
            else:
                theirs.append(os.dup(spec.fileno()))
                streams.append(None)
        status_r, status_w = os.pipe()
        theirs.append(status_w)
        request = {"argv": ["golive", *args[3:]], "env": dict(os.environ if env is None else env),
                   "cwd": str(cwd or os.getcwd()), "new_session": start_new_session}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
                conn.connect(self.socket_path)
                socket.send_fds(conn, [json.dumps(request).encode()], theirs)
                pid = int(conn.recv(64))
        finally:
            for fd in theirs:
                os.close(fd)
        return ForkedProcess(pid, status_r, *streams, args=args)

    def close(self) -> None:
        """Stop the server (its children are on their own: the tests stop those they started)."""
        self._server.terminate()
        self._server.wait(10)
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        os.rmdir(self._dir)


# ---- the server side -------------------------------------------------------------------------------------------

def _serve(socket_path: str, preload: Sequence[str]) -> dict[str, Any]:
    """Import ``preload``, then fork a child per request; returns only in a child, with its request."""
    import gc
    import importlib

    for name in preload:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the imported objects stay shared with the children instead of being copied by their collections
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below through the wake-up pipe
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    statuses: dict[int, int] = {}  # child pid -> the write end of its status pipe
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.flush()
    while True:
        readable = select.select([listener, wake_r], [], [])[0]
        if wake_r in readable:
            while True:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    break
        _reap(statuses)
        if listener not in readable:
            continue
        conn, _ = listener.accept()
        with conn:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                for fd in (wake_r, wake_w, *statuses.values(), fds[3]):
                    os.close(fd)
                listener.close()
                request["fds"] = fds[:3]
                return request
            for fd in fds[:3]:
                os.close(fd)
            statuses[pid] = fds[3]
            conn.send(str(pid).encode())


def _reap(statuses: dict[int, int]) -> None:
    while statuses:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if (fd := statuses.pop(pid, None)) is not None:
            os.write(fd, str(os.waitstatus_to_exitcode(status)).encode())
            os.close(fd)


def _become(request: dict[str, Any]) -> None:
    """In the child: take the request's streams, environment, directory and session, as a fresh process would."""
    import random

    if request["new_session"]:
        os.setsid()
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    random.seed()  # not the server's state: two children must not draw the same numbers
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = io.open(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = io.TextIOWrapper(io.open(1, "wb", closefd=False), encoding="utf-8", write_through=unbuffered,
                                  line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.open(2, "wb", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
    sys.argv = request["argv"]
    _name_process(sys.argv[1:3])


def _name_process(words: list[str]) -> None:
    """Name the child after what it runs (``ps``, ``top`` and /proc show ``gl:prober``, ``gl:run``), not as the server."""
    import ctypes

    name = "gl:" + (words[1] if words[:1] == ["serve"] and len(words) > 1 else (words or ["?"])[0])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


if __name__ == "__main__":
    import runpy

    child = _serve(sys.argv[1], sys.argv[2:])
    _become(child)
    runpy.run_module("golive", run_name="__main__", alter_sys=True)
