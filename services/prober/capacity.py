"""The prober's capacity: how many holds one prober runs at once, bounded by the connections they need, not by a
worker count.

Every request of a probe goes over its worker's own connection (a database session, an HTTP connection), and
connections are what a prober runs out of: file descriptors, the database's max_connections, memory for their
buffers. So a prober takes every hold whose connections fit in its budget (``GOLIVE_PROBER_MAX_CONNECTIONS``)
and refuses the one that does not fit at once, saying so: a hold never waits in a queue while its step's
timeout runs (one prober used to run at most 8 holds; the 9th waited). The coordinator reports the refusal and
retries the step (``retries`` in the plan), when a hold has ended or another prober instance takes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from golive.shared.commands import PgHealthProbeSpec, RunProbe
from golive.shared.plan.probes import ProbeSpec

BUDGET_SETTING = "GOLIVE_PROBER_MAX_CONNECTIONS"


class AtCapacity(Exception):
    """A hold does not fit in what is left of the prober's connection budget; the message says by how much."""


def connections_needed(probes: Sequence[RunProbe]) -> int:
    """The connections ``probes`` hold open at once: each worker's own, per target (the probe and its baseline),
    and for a pg_health probe one per server it samples (the primary, each replica, PgBouncer's console)."""
    return sum(probe.concurrency * sum(_per_worker(spec) for spec in (probe.probe, probe.baseline) if spec is not None)
               for probe in probes)


def _per_worker(spec: ProbeSpec) -> int:
    if isinstance(spec, PgHealthProbeSpec):
        return 1 + len(spec.replica_url_envs) + (1 if spec.pgbouncer_admin_url_env else 0)
    return 1


@dataclass
class ConnectionBudget:
    """The connections a prober may hold for its holds at once, and those its running holds hold now."""

    limit: int
    in_use: int = 0
    holds: int = 0
    most_holds: int = 0  # the most holds run at once so far (a gauge for operators)

    @contextmanager
    def claim(self, need: int) -> Iterator[None]:
        """Hold ``need`` connections for the block; AtCapacity at once when they do not fit."""
        if need > self.limit:
            raise AtCapacity(f"prober at capacity: this hold needs {_connections(need)}, more than its whole budget "
                             f"of {self.limit} ({BUDGET_SETTING}); lower the checks' concurrency or raise the budget")
        if self.in_use + need > self.limit:
            raise AtCapacity(f"prober at capacity: this hold needs {_connections(need)}, {self.in_use} of "
                             f"{self.limit} in use by {self.holds} running hold{'' if self.holds == 1 else 's'} "
                             f"({BUDGET_SETTING}); start another prober or raise the budget")
        self.in_use += need
        self.holds += 1
        self.most_holds = max(self.most_holds, self.holds)
        try:
            yield
        finally:
            self.in_use -= need
            self.holds -= 1


def _connections(n: int) -> str:
    return f"{n} connection{'' if n == 1 else 's'}"
