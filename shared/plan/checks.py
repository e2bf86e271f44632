"""Checks: a probe run for a while under a load and judged by thresholds (smoke, stage holds, final validation,
post-deploy), and the preflight's manual gates."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from golive.shared.limits import requests_to_pass
from golive.shared.plan.base import Strict
from golive.shared.plan.durations import Duration

# A stage hold's check that names no load mode is probed open loop (``hold_load``): at least the runbook's own rate,
# more when its windows need more requests for a healthy one to pass its limits clearly, never more than the cap
HOLD_RATE = 20.0
MAX_HOLD_RATE = 200.0
# and, unless it names its concurrency, with workers enough for requests of this long at that rate (fewer would
# make the prober's own queue part of every latency), at most MAX_HOLD_WORKERS connections
HOLD_WORKER_SPAN_S = 0.1
MAX_HOLD_WORKERS = 8


class Thresholds(Strict):
    """Limits a probe is judged by. Absent limits are not judged."""

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    error_rate_pct: float | None = Field(default=None, ge=0, le=100)
    min_samples: int = Field(default=1, ge=1)
    # pg_health gauges, judged on their worst value over the run
    replica_lag_s: float | None = Field(default=None, ge=0)
    wal_lag_bytes: float | None = Field(default=None, ge=0)
    connection_use_pct: float | None = Field(default=None, ge=0, le=100)
    long_transactions: int | None = Field(default=None, ge=0)
    # canary vs baseline: how much slower (p95, ms) the probed target may be before a significant difference fails it
    p95_increase_ms: float | None = Field(default=None, ge=0)


class LoadSpec(Strict):
    """How requests are sent. ``open``: request i is due at t0 + i/rate whatever the answers do, and its
    latency counts from that due time, so a stall shows as latency (no coordinated omission); ``concurrency``
    connections share the schedule. ``closed``: ``concurrency`` workers, each sends when its last answer came.
    Unsaid (None): open in a stage's hold, closed elsewhere."""

    # None: the step's own default, open loop in a stage's hold (hold_load), closed anywhere else; stored as None, so
    # a run resumed from its stored plan loads its holds as it started them
    mode: Literal["closed", "open"] | None = Field(
        default=None, description="open or closed; default: open in a stage's hold, closed elsewhere")
    rate: float | None = Field(default=None, gt=0, le=1_000_000, description="requests per second (open loop)")
    warmup_s: float = Field(default=0.0, ge=0, description="requests due in the first seconds are not counted")

    @model_validator(mode="after")
    def _open_loop_has_a_rate(self) -> LoadSpec:
        if self.mode == "open" and self.rate is None:
            raise ValueError("an open-loop load needs a rate (requests per second)")
        return self


class Check(Strict):
    """A probe of ``probes`` run for ``duration`` at ``concurrency`` and judged by ``thresholds``."""

    probe: str
    duration: Duration | None = Field(default=None, description="default: the stage's hold")
    concurrency: int | None = Field(default=None, ge=1, le=256,
                                    description="workers; default 1, in a stage's open-loop hold enough for its rate")
    load: LoadSpec = Field(default=LoadSpec(), description="open loop at a rate (a stage hold's default) or closed "
                           "loop (elsewhere's default), warm-up")
    window: Duration | None = Field(default=None, description="publish a probe_window event every window")
    thresholds: Thresholds = Thresholds()


def hold_load(check: Check, window_s: float, alpha: float) -> tuple[LoadSpec, int]:
    """The load and concurrency of ``check`` in a stage's hold: open loop unless the check says ``mode``.

    Slowness is never silence: open loop sends on schedule whatever the target does, times each request from its
    due time and counts the requests it could not send, where a closed loop sends fewer requests to a slower target.
    The rate, when the check names none, is HOLD_RATE or what a ``window_s`` window needs for a healthy target to
    pass each of its limits clearly at ``1 - alpha`` (shared/limits.py), up to MAX_HOLD_RATE."""
    load = check.load
    if load.mode is not None:
        return load, check.concurrency or 1
    if load.rate is not None:
        rate = load.rate
    else:
        t = check.thresholds
        fractions = [f for f in (0.05 if t.p95_ms else None, 0.01 if t.p99_ms else None,
                                 (t.error_rate_pct or 0) / 100 or None) if f]
        needed = max((requests_to_pass(f, alpha) for f in fractions), default=0)
        rate = min(MAX_HOLD_RATE, max(HOLD_RATE, math.ceil(needed / max(window_s, 1e-3))))
    workers = check.concurrency or min(MAX_HOLD_WORKERS, max(1, math.ceil(rate * HOLD_WORKER_SPAN_S)))
    return LoadSpec(mode="open", rate=rate, warmup_s=load.warmup_s), workers


class Gate(Strict):
    """A manual step of the preflight: the run waits for `golive approve RUN` (runbook: "Confirm backup completion")."""

    gate: str = Field(min_length=1, description="what the operator confirms by approving")


def _preflight_kind(value: object) -> str:
    return "gate" if isinstance(value, Gate) or (isinstance(value, dict) and "gate" in value) else "check"


# each item is a check (a probe: backup confirmed by a SQL or HTTP probe, connectivity) or a manual gate
PreflightItem = Annotated[Annotated[Check, Tag("check")] | Annotated[Gate, Tag("gate")], Discriminator(_preflight_kind)]
