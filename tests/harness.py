"""Helpers the tests share: where the repo is, running the CLI as a user does, a run known to the services."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.builders import RunEvents
from tests.forkserver import ForkServer

REPO = Path(__file__).resolve().parent.parent


_fork_server: ForkServer | None = None


def golive_popen(args: list[str], **popen: Any) -> Any:
    """Start ``[python, -m, golive, ...]`` as subprocess.Popen would: forked from the tests' fork server
    (tests/forkserver.py, started on first use in this test process), or a fresh interpreter with
    GOLIVE_TEST_FRESH_PROCESSES=1."""
    global _fork_server
    if os.environ.get("GOLIVE_TEST_FRESH_PROCESSES"):
        return subprocess.Popen(args, **popen)
    if _fork_server is None:
        _fork_server = ForkServer()
    return _fork_server.popen(args, **popen)


def stop_fork_server() -> None:
    global _fork_server
    if _fork_server is not None:
        _fork_server.close()
        _fork_server = None


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 120.0, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run `golive ...` as a user would, in its own process (in the repository unless ``cwd`` says elsewhere)."""
    argv = [sys.executable, "-m", "golive", *args]
    if os.environ.get("GOLIVE_TEST_FRESH_PROCESSES"):
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=cwd)
    proc = golive_popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def start_run(plan: Path, run_id: str, env: dict[str, str], *args: str) -> Any:
    """`golive run` in the background, its output readable line by line."""
    return golive_popen([sys.executable, "-m", "golive", "run", str(plan), "--run-id", run_id, *args], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


@contextmanager
def background_run(plan: Path, run_id: str, env: dict[str, str], *args: str) -> Iterator[Any]:
    """start_run for the length of a ``with`` block: a run still going when the block leaves (a failed assert, a
    timeout) is killed there, so that no test leaves one behind."""
    run = start_run(plan, run_id, env, *args)
    try:
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def finish_after(run: Any, *operate: str, env: dict[str, str], timeout_s: float = 90.0) -> tuple[str, str]:
    """`golive OPERATE...` (continue, approve: what a waiting ``run`` waits for), which must succeed, then all that
    ``run`` prints until it ends: its stdout and stderr."""
    answered = run_cli(*operate, env=env)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    return run.communicate(timeout=timeout_s)


def wait_for_output(run: subprocess.Popen, text: str, timeout_s: float = 60.0, stream: str = "stdout") -> str:
    """Read the run's output (``stream``: its stdout or stderr) until a line contains ``text``; returns what was
    read."""
    import time

    seen, deadline, lines = "", time.monotonic() + timeout_s, getattr(run, stream)
    while text not in seen:
        assert time.monotonic() < deadline and run.poll() is None, seen
        seen += lines.readline()
    return seen


async def record_run_started(js, subjects, run_id: str) -> int:
    """Record ``run_id``'s run_started as the coordinator does, so services that refuse work for an unknown run
    (shared/run_guard.py) take commands a test sends them directly; returns its stream sequence. Idempotent."""
    started = RunEvents(run_id, plan={}, start=datetime.now(UTC), root=subjects.root).started(
        plan_name="test", previous_deploy_id=None)
    ack = await js.publish(started.subject, started.to_json(), stream=subjects.event_stream,
                           headers={"Nats-Msg-Id": started.id})
    return ack.seq


def read_until(run: subprocess.Popen, predicate) -> list[dict]:
    """The JSON events `golive run --json` prints, read until one matches ``predicate`` (that one included)."""
    import json

    seen: list[dict] = []
    while True:
        line = run.stdout.readline()
        assert line, f"the run ended before the point waited for: {[e.get('type') for e in seen]}"
        if line.startswith("{"):
            seen.append(json.loads(line))
            if predicate(seen[-1]):
                return seen


def build_wheel(tmp_path: Path) -> Path:
    """golive's wheel, built from the files the Dockerfile's build stage copies (golive/ with its symlinks
    golive/shared and golive/services, and the folders they point to), outside the repository so the build leaves
    nothing behind in it; the build backend is the installed one (no index needed)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("golive", "shared", "services"):
        shutil.copytree(REPO / package, source / package, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "dist"), "--quiet"], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("golive-*.whl")
    return wheel
