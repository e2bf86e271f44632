"""Checks: a probe run for a while under a load and judged by thresholds (smoke, stage holds, final validation,
post-deploy), and the preflight's manual gates."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from shared.plan.base import Strict
from shared.plan.durations import Duration


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
    connections share the schedule. ``closed``: ``concurrency`` workers, each sends when its last answer came."""

    mode: Literal["closed", "open"] = "closed"
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
    concurrency: int = Field(default=1, ge=1, le=256)
    load: LoadSpec = Field(default=LoadSpec(), description="closed loop (default) or open loop at a rate, warm-up")
    window: Duration | None = Field(default=None, description="publish a probe_window event every window")
    thresholds: Thresholds = Thresholds()


class Gate(Strict):
    """A manual step of the preflight: the run waits for `golive approve RUN` (runbook: "Confirm backup completion")."""

    gate: str = Field(min_length=1, description="what the operator confirms by approving")


def _preflight_kind(value: object) -> str:
    return "gate" if isinstance(value, Gate) or (isinstance(value, dict) and "gate" in value) else "check"


# each item is a check (a probe: backup confirmed by a SQL or HTTP probe, connectivity) or a manual gate
PreflightItem = Annotated[Annotated[Check, Tag("check")] | Annotated[Gate, Tag("gate")], Discriminator(_preflight_kind)]
