"""`golive up` keeps its services running: a crashed service is started again after a backoff, logged and counted;
the stack stops only on Ctrl-C, or when one service keeps crashing (then something is wrong that a restart will
not fix, and an operator must look).

The policy is pure (``RestartPolicy.decide`` over the times of a service's recent crashes); ``Supervisor`` is the
thin shell that polls the child processes and starts them again.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter

from golive.shared.backoff import Backoff


class Children(Protocol):
    """The child processes a supervisor watches (golive.stack.service_processes.ServiceProcesses)."""

    def exited(self) -> dict[str, int]: ...

    def restart(self, key: str) -> subprocess.Popen: ...


@dataclass(frozen=True)
class RestartPolicy:
    """Restart after ``base_s`` doubling to ``cap_s`` (golive's one backoff, exact: a restart needs no jitter); give up
    after ``max_crashes`` crashes within ``period_s``."""

    base_s: float = 0.5
    cap_s: float = 10.0
    max_crashes: int = 5
    period_s: float = 60.0

    def decide(self, crashes: list[float], now: float) -> tuple[Literal["restart", "give_up"], float]:
        """What to do after the last of ``crashes`` (monotonic times, oldest first): restart after a delay, or give up."""
        recent = [t for t in crashes if now - t <= self.period_s]
        if len(recent) >= self.max_crashes:
            return "give_up", 0.0
        return "restart", Backoff(base_s=self.base_s, cap_s=self.cap_s).delay(len(recent))


@dataclass
class Supervisor:
    """Watches ``services``; ``check()`` restarts what crashed when its backoff is over. ``gave_up`` names the service
    that kept crashing (the stack should stop)."""

    services: Children
    echo: Callable[[str], None]
    policy: RestartPolicy = RestartPolicy()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    clock: Callable[[], float] = time.monotonic
    gave_up: str | None = None
    _crashes: dict[str, list[float]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.restarts = Counter("golive_stack_service_restarts", "Services golive up started again after a crash",
                                ["service"], registry=self.registry)

    def check(self) -> list[str]:
        """Note the services that exited, start again those whose backoff is over; return the ones restarted now."""
        now, restarted = self.clock(), []
        for key, code in self.services.exited().items():
            if key in self._due:
                continue
            crashes = self._crashes.setdefault(key, [])
            crashes.append(now)
            action, delay = self.policy.decide(crashes, now)
            if action == "give_up":
                self.gave_up = key
                self.echo(f"{key} crashed {len(crashes)} times in {self.policy.period_s:g} s (last exit code {code}): "
                          "not restarting it again; stopping the stack (see its log)")
                return restarted
            self._due[key] = now + delay
            self.echo(f"{key} exited with code {code}; restarting it in {delay:g} s")
        for key, due in list(self._due.items()):
            if now >= due:
                del self._due[key]
                proc = self.services.restart(key)
                self.restarts.labels(key).inc()
                self.echo(f"{key} restarted: pid {proc.pid}")
                restarted.append(key)
        return restarted
