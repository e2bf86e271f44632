"""A run's summary: what listing runs, the weekly report and `golive watch`'s list need of it, in one small record.

Kept by the coordinator in the run-history bucket (shared/run_history.py) so that those read one record per run and
never the event stream. ``summarise`` is the one rule that makes it: a pure fold of the run's events in stream
order (``summary_of`` for a whole list); the coordinator folds each event it applies, and the summary it writes when
the run ends is the fold of the run's whole history. A post-deploy watch has a record of its own (``WatchRecord``):
it goes on for days after its run's summary was written, by another part of the coordinator.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from golive.shared.envelope import Envelope
from golive.shared.events import (
    AbortRequested,
    ApprovalGranted,
    CompensationStarted,
    ContinueRequested,
    PauseRequested,
    PhaseStarted,
    ProbeCompleted,
    ProbesCompleted,
    RetryRequested,
    RunFinished,
    RunStarted,
    StepFailed,
    WatchBreached,
)

State = Literal["running", "waiting", "paused", "compensating", "succeeded", "rolled_back", "needs_human"]
# the one word `kubectl argo rollouts` users expect for each state
HEALTH: dict[str, str] = {"running": "Progressing", "waiting": "Paused", "paused": "Paused", "compensating": "Degraded",
                          "succeeded": "Healthy", "rolled_back": "RolledBack", "needs_human": "Degraded"}
ENDED = ("succeeded", "rolled_back", "needs_human")


class Stored(BaseModel):
    """A record kept in a bucket: a newer golive may add fields, which an older one reading it ignores."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Rollback(Stored):
    """The step whose failure rolled the run back, the cause in one word (counted by the weekly report) and why."""

    step: str
    cause: str
    reason: str


class RunSummary(Stored):
    """One run in a line: who, what, when, where it got to, how it ended and why, its worst p95 per probe."""

    run_id: str
    plan: str
    deploy_id: str
    previous_deploy_id: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    state: State = "running"
    phase: str = ""  # the phase of the last step started (preflight, migrate, smoke, canary, ...)
    step: str = ""  # the last step started: how far the run got
    reason: str = ""  # why it ended, or why it is being rolled back
    duration_s: float | None = None
    rollback: Rollback | None = None  # the first failure (what the run was rolled back for)
    paused_by: str = ""
    post_deploy_breaches: int = 0
    p95_ms: dict[str, float] = {}  # per probe, the run's worst p95: what a gate is judged on

    @property
    def outcome(self) -> str:
        """succeeded, rolled_back, needs_human, or running (not ended yet, whatever it is doing)."""
        return self.state if self.state in ENDED else "running"

    @property
    def health(self) -> str:
        return HEALTH[self.state]

    def listed(self) -> tuple[object, ...]:
        """What a listing of runs shows: a summary whose listed fields did not change needs no new write."""
        return (self.state, self.phase, self.step, self.reason, self.finished_at, self.paused_by)


class WatchRecord(Stored):
    """A post-deploy watch in a line, as `golive watch` lists it."""

    run_id: str
    deploy_id: str
    started_at: datetime
    ends_at: datetime
    checks_done: int = 0
    checks_planned: int = 0
    breaches: int = 0
    summaries: int = 0
    ended: bool = False


def summarise(summary: RunSummary | None, envelope: Envelope) -> RunSummary | None:
    """``summary`` with one more of the run's events folded in (None until the run's start)."""
    data = envelope.data
    if isinstance(data, RunStarted):
        if summary is not None:
            return summary  # a duplicate start changes nothing
        return RunSummary(run_id=envelope.runid, plan=data.plan_name, deploy_id=data.deploy_id,
                          previous_deploy_id=data.previous_deploy_id, started_at=envelope.time)
    if summary is None:
        return None  # a rejected start's events, or a stream cut before the run: nothing to summarise
    update: dict[str, object] = {}
    ended = summary.state in ENDED
    if isinstance(data, RunFinished):  # the last one counts: `golive retry` ends a needs_human run a second time
        update = {"state": data.outcome, "reason": data.reason, "duration_s": round(data.duration_s, 1),
                  "finished_at": envelope.time, "paused_by": ""}
    elif isinstance(data, RetryRequested):
        update = {"state": "compensating"}
    elif ended:
        if isinstance(data, WatchBreached):
            update = {"post_deploy_breaches": summary.post_deploy_breaches + 1}
    elif isinstance(data, PhaseStarted):
        update = {"phase": data.phase, "step": data.step}
        if data.where.kind == "gate" and summary.state == "running":  # it waits for a person: say which command
            stage = f" --stage {data.where.stage}" if data.where.stage is not None else ""
            update |= {"state": "waiting", "reason": f"waiting at {data.step}: `golive approve {envelope.runid}{stage}`"}
        elif summary.state == "waiting":
            update |= {"state": "running", "reason": ""}
    elif isinstance(data, ApprovalGranted) and summary.state == "waiting":
        update = {"state": "running", "reason": ""}
    elif isinstance(data, StepFailed):
        update = {"state": "compensating", "reason": data.reason, "paused_by": ""}
        if summary.rollback is None:
            update["rollback"] = Rollback(step=data.step, cause=data.cause, reason=data.reason)
    elif isinstance(data, CompensationStarted | AbortRequested):
        update = {"state": "compensating", "paused_by": ""}
    elif isinstance(data, PauseRequested) and summary.state == "running":
        update = {"state": "paused", "paused_by": f"{data.requested_by}: {data.reason}" if data.reason
                  else data.requested_by}
    elif isinstance(data, ContinueRequested) and summary.state == "paused":
        update = {"state": "running", "paused_by": ""}
    if isinstance(data, ProbeCompleted | ProbesCompleted):
        results = [data] if isinstance(data, ProbeCompleted) else list(data.results)
        worst = dict(summary.p95_ms)
        for r in results:
            if r.count:  # a probe with no answered request has no p95 worth trending
                worst[r.probe] = round(max(worst.get(r.probe, 0.0), r.p95_ms), 2)
        if worst != summary.p95_ms:
            update["p95_ms"] = dict(sorted(worst.items()))
    return summary.model_copy(update=update) if update else summary


def summary_of(events: Iterable[Envelope]) -> RunSummary | None:
    """The summary of one run's events (in stream order); None when the run never started."""
    summary: RunSummary | None = None
    for envelope in events:
        summary = summarise(summary, envelope)
    return summary


def summaries_of(events: Iterable[Envelope]) -> list[RunSummary]:
    """The summary of every run among ``events`` (any runs' events, in stream order), in start order."""
    by_run: dict[str, RunSummary | None] = {}
    for envelope in events:
        by_run[envelope.runid] = summarise(by_run.get(envelope.runid), envelope)
    return sorted((s for s in by_run.values() if s is not None), key=lambda s: s.started_at)


def with_watches(runs: Iterable[RunSummary], watches: Iterable[WatchRecord]) -> list[RunSummary]:
    """``runs`` with the breaches their post-deploy watch counted since the run's summary was written."""
    breaches = {w.run_id: w.breaches for w in watches}
    return [r.model_copy(update={"post_deploy_breaches": max(r.post_deploy_breaches, breaches[r.run_id])})
            if r.run_id in breaches else r for r in runs]
