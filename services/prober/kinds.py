"""What every probe kind shares: the target protocol, the error classes, failures (the registry of kinds by
name is services/prober/targets.py; one module per kind).

A target is opened once, then asked for one request at a time by each of ``concurrency`` workers (worker
``i`` always uses its own connection ``i``). A request either returns (its health gauges, if the kind
has any) or raises ProbeFailure with an error class. The load model around it owns the clock: a target
never sleeps to keep a schedule.
"""

from __future__ import annotations

from typing import Protocol

# the error classes reported in windows and results ("other": an exception no kind foresaw)
TIMEOUT, CONNECTION, DNS, SQL, HTTP_4XX, HTTP_5XX, UNEXPECTED_STATUS, BODY_MISMATCH, OTHER = (
    "timeout", "connection", "dns", "sql", "http_4xx", "http_5xx", "unexpected_status", "body_mismatch", "other",
)


class Gauges(dict[str, float]):
    """A request's health gauges by name, and ``unread``: the gauges it could not read, with why (a replica down,
    a privilege missing). An unread gauge is no evidence either way: its limit is judged inconclusive, never
    passed, unless a value read elsewhere is already over it (shared/judge.py). ``deployment``: the deployment that
    answered, where the answer names it (an http probe's deployment header; a check on the production alias)."""

    def __init__(self, *args, deployment: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unread: dict[str, str] = {}
        self.deployment = deployment


class ProbeFailure(Exception):
    """One request failed; ``error_class`` says how (timeout, connection, dns, sql, http_4xx, ...); ``gauges``:
    what the request could still read (a health sample whose replica is down still reads the primary); ``deployment``:
    the deployment whose answer this was, where it said (a 500 from the canary); None for no answer at all."""

    def __init__(self, error_class: str, detail: str = "", gauges: Gauges | None = None,
                 deployment: str | None = None) -> None:
        super().__init__(f"{error_class}: {detail}" if detail else error_class)
        self.error_class = error_class
        self.gauges = gauges
        self.deployment = deployment


class ProbeSetupError(Exception):
    """The probe cannot run at all: a missing environment variable (invalid), or a sampling query that
    could not run (``transient``: the database may be back in a moment)."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


class ProbeTarget(Protocol):
    """What every probe kind provides."""

    name: str
    # what one request asks for, as a result's summary shows it (an http probe's method and URL, golive.shared.secrets's
    # shown_url: no credentials, no query); "" where the probe's name says it all (a named query)
    shown: str

    async def open(self, concurrency: int) -> None:
        """Prepare ``concurrency`` workers (connections are made lazily and remade after failures)."""

    async def request(self, worker: int) -> dict[str, float] | None:
        """Send one request on worker ``worker``'s connection; return health gauges or None; raise ProbeFailure."""

    async def close(self) -> None:
        """Release every connection (also after failures)."""


def secret(env: dict[str, str], name: str, what: str) -> str:
    """The value of environment variable ``name``, or ProbeSetupError naming it (never its value)."""
    value = env.get(name)
    if not value:
        raise ProbeSetupError(f"{what}: environment variable {name} is not set")
    return value
