"""`golive up`'s restart policy and supervisor: a crashed service starts again after a growing backoff; one that
keeps crashing stops the stack. The children here are real processes (the policy is pure)."""

from __future__ import annotations

import subprocess
import sys

from golive.stack.supervise import RestartPolicy, Supervisor


def test_backoff_doubles_to_its_cap_and_gives_up_after_too_many_recent_crashes():
    policy = RestartPolicy(base_s=0.5, cap_s=4.0, max_crashes=5, period_s=60.0)
    assert policy.decide([0.0], 0.0) == ("restart", 0.5)
    assert policy.decide([0.0, 1.0], 1.0) == ("restart", 1.0)
    assert policy.decide([0.0, 1.0, 2.0, 3.0], 3.0) == ("restart", 4.0)  # capped
    assert policy.decide([0.0, 1.0, 2.0, 3.0, 4.0], 4.0) == ("give_up", 0.0)
    # crashes long ago do not count: a service that crashes once a day is restarted every time
    assert policy.decide([0.0, 100.0, 200.0, 300.0, 400.0], 400.0) == ("restart", 0.5)


class Children:
    """Real child processes: each start runs ``code`` in a new Python."""

    def __init__(self, code: str) -> None:
        self.code, self.procs, self.starts = code, {}, 0
        self.restart("svc")

    def exited(self) -> dict[str, int]:
        return {k: p.returncode for k, p in self.procs.items() if p.poll() is not None}

    def restart(self, key: str) -> subprocess.Popen:
        self.starts += 1
        self.procs[key] = subprocess.Popen([sys.executable, "-c", self.code])
        return self.procs[key]

    def stop(self) -> None:
        for p in self.procs.values():
            p.kill()
            p.wait()


def _until(supervisor: Supervisor, done) -> None:
    import time

    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline
        supervisor.check()
        time.sleep(0.02)


def test_a_crashed_child_is_restarted_counted_and_logged():
    children, lines = Children("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), []
    supervisor = Supervisor(children, lines.append, RestartPolicy(base_s=0.01, cap_s=0.01, max_crashes=3))
    try:
        _until(supervisor, lambda: children.starts >= 2)
        assert supervisor.restarts.labels("svc")._value.get() == 1
        assert lines[0] == "svc exited with code -9; restarting it in 0.01 s" and lines[1].startswith("svc restarted")
    finally:
        children.stop()


def test_a_child_that_keeps_crashing_makes_the_supervisor_give_up():
    children, lines = Children("raise SystemExit(4)"), []
    supervisor = Supervisor(children, lines.append, RestartPolicy(base_s=0.01, cap_s=0.01, max_crashes=3))
    try:
        _until(supervisor, lambda: supervisor.gave_up is not None)
        assert supervisor.gave_up == "svc" and children.starts == 3
        assert "crashed 3 times" in lines[-1] and "stopping the stack" in lines[-1]
    finally:
        children.stop()


def test_a_healthy_child_is_left_alone():
    children, lines = Children("import time; time.sleep(30)"), []
    supervisor = Supervisor(children, lines.append, RestartPolicy(base_s=0.01))
    try:
        for _ in range(10):
            assert supervisor.check() == []
        assert children.starts == 1 and lines == []
    finally:
        children.stop()
