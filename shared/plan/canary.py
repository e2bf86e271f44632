"""The canary: stages of increasing weight, each held while its checks run, judged per window (analysis),
guarded by the database's gauges (guards) and compared with the stable deployment (baseline)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from golive.shared.plan.base import MAX_ITEMS, MAX_STAGES, Problem, Strict
from golive.shared.plan.checks import Check
from golive.shared.plan.durations import Duration


class Stage(Strict):
    weight: int = Field(gt=0, le=100)
    hold: Duration
    approval: bool = Field(default=False, description="wait for `golive approve RUN --stage N` before shifting")
    checks: list[Check] = Field(default=[], max_length=MAX_ITEMS)


class Canary(Strict):
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)

    @model_validator(mode="after")
    def _weights_increase_to_100(self) -> Canary:
        previous = 0
        for i, stage in enumerate(self.stages):
            if stage.weight <= previous:
                raise Problem(
                    ("stages", i, "weight"),
                    f"{stage.weight} is not higher than the previous stage ({previous}); weights must increase and end at 100",
                )
            previous = stage.weight
        if previous != 100:
            raise Problem(
                ("stages", len(self.stages) - 1, "weight"),
                f"the last stage's weight is {previous}; the last stage must send 100% to the new deployment",
            )
        return self


class Analysis(Strict):
    """Per-window analysis of canary stage checks: each window of a check is judged against the check's
    thresholds as it closes, so a breaching stage fails without waiting for the end of its hold.

    Failed windows are counted per stage (all its checks together); consecutive failures per check."""

    interval: Duration = Field(default=30.0, gt=0, description="window length (a check's `window` overrides it)")
    min_samples: int = Field(default=20, ge=1, description="fewer requests in a window: inconclusive")
    failure_limit: int = Field(default=3, ge=1, description="failed windows in a stage that fail it")
    consecutive_failure_limit: int = Field(default=2, ge=1, description="consecutive failed windows of a check that fail the stage")
    alpha: float = Field(
        default=0.01, gt=0, lt=1,
        description="false-alarm budget of the sequential canary-against-stable judge, over a whole hold and every look")
    # plan version 1's ``ignore`` (and its absence) reads as ``pause``: shared/plan_versions.py
    inconclusive: Literal["pause", "fail", "extend"] = Field(
        default="pause", description="a hold ending with too little evidence (a check or the guard without a conclusive "
        "window, or more inconclusive windows than conclusive ones): pause waits for `golive continue`; fail: an "
        "inconclusive window is a failed window; extend: hold once more for the hold's length, then pause")


class Guards(Strict):
    """Database guards: a pg_health probe runs through every canary stage's hold, and one window over a limit
    fails the stage at once (runbook: replica lag, WAL lag, connection pool use)."""

    probe: str = Field(description="a pg_health probe of `probes`")
    sample_every: Duration = Field(default=1.0, gt=0, description="how often the gauges are read")
    replica_lag_s: float | None = Field(default=None, ge=0)
    wal_lag_bytes: float | None = Field(default=None, ge=0)
    connection_use_pct: float | None = Field(default=None, ge=0, le=100)
    long_transactions: int | None = Field(default=None, ge=0)

    def limits(self) -> dict[str, float]:
        """Gauge name -> limit, for the limits set."""
        return {k: v for k, v in self.model_dump(exclude={"probe", "sample_every"}).items() if v is not None}


class Baseline(Strict):
    """Canary no worse than stable: http checks whose url names ``{deployment}`` also probe the previous
    deployment with the same load at the same time; a significantly slower canary fails the check."""

    p95_increase_ms: float = Field(ge=0, description="how much higher the canary's p95 may be than stable's")
