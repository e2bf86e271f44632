"""The runbook's "next 7 days": the watch after a run succeeded."""

from __future__ import annotations

from pydantic import Field

from golive.shared.plan.base import MAX_ITEMS, Strict
from golive.shared.plan.checks import Check
from golive.shared.plan.durations import Duration


class PostDeploy(Strict):
    """The runbook's "next 7 days": health checks every ``health_every`` and a summary every ``summary_every``
    for ``period`` after the run succeeded."""

    period: Duration = Field(default=7 * 86400.0, gt=0)
    health_every: Duration = Field(default=3600.0, gt=0)
    summary_every: Duration = Field(default=86400.0, gt=0)
    checks: list[Check] = Field(default=[], max_length=MAX_ITEMS)
