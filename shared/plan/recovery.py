"""How a run meets failure: how long a step may go unanswered, how often a transient failure is retried, and
what a rollback undoes beyond traffic."""

from __future__ import annotations

from pydantic import Field

from golive.shared.plan.base import Strict
from golive.shared.plan.durations import Duration


class Rollback(Strict):
    drop_indexes: bool = Field(default=False, description="drop the indexes this run built when it rolls back")


class Timeouts(Strict):
    step: Duration = Field(default=600.0, gt=0, description="how long a command may go unanswered beyond its own work")
    approval: Duration = Field(default=3600.0, gt=0, description="how long a gate waits for approval before rolling back")


class Retries(Strict):
    """Transient failures (a dependency that timed out, a 503) are retried with exponential backoff;
    compensations are retried on any failure but invalid input, since undoing must not give up lightly."""

    attempts: int = Field(default=3, ge=1, le=10, description="tries per step, the first included")
    backoff: Duration = Field(default=2.0, gt=0, description="wait before the second try; doubles each time")
    max_backoff: Duration = Field(default=60.0, gt=0)
