"""What the notifier knows of one run (RunView), folded by moments.py from the run's events.

The view keeps what a message must say so that it tells what happened rather than what usually happens:
whether traffic was ever touched (a shift step began: before that a failed run changed no traffic, and its
messages say so instead of announcing a rollback), the traffic rollback as read back and how long after the
failure it came, the indexes this run built and whether its rollback dropped or kept them, and who approved a
gate (with what they typed), paused, continued or aborted the run, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from golive.shared.judge import reading_words
from golive.shared.plan import Plan
from golive.shared.plan.canary import Stage
from golive.shared.plan.notifications import Notifications
from golive.shared.story import RunStory


@dataclass(frozen=True)
class ProbeResult:
    """One check's measured values, as templates see them."""

    step: str
    stage: int | None  # the canary stage whose step measured it
    probe: str
    label: str
    passed: bool
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    summary: str
    verdicts: tuple[dict[str, Any], ...]

    @property
    def text(self) -> str:
        """``stripe_recent p95 3.2 ms <= 400 ms, error rate 0% <= 1% over 120 requests`` (shared/judge.py's words)."""
        judged = ", ".join(reading_words(v["metric"], v["observed"], v["limit"]) for v in self.verdicts)
        return f"{self.probe} {judged or f'p95 {self.p95_ms:g} ms'} over {self.count + self.errors:,} requests"


@dataclass(frozen=True)
class TrafficBack:
    """The traffic rollback as the traffic service read it back."""

    to: str
    canary: str
    verified_weight: int
    changed: bool
    at: datetime


@dataclass(frozen=True)
class RunView:
    """What the notifier knows of one run."""

    run_id: str
    plan_name: str
    plan: Plan
    deploy_id: str
    previous_deploy_id: str | None
    started_at: datetime
    phase: str = ""
    step: str = ""
    detail: str = ""
    stage: int = 0  # the stage whose steps run now; 0 before the canary
    results: tuple[ProbeResult, ...] = ()
    failed_step: str = ""
    failed_stage: int | None = None  # the canary stage of the failed step
    reason: str = ""
    compensating: bool = False
    undone: tuple[str, ...] = field(default=())
    outcome: str | None = None
    duration_s: float = 0.0
    left_to_undo: tuple[str, ...] = ()
    watch_ended: bool = False
    failed_at_time: datetime | None = None  # when the coordinator failed the step (the breach, as judged)
    shift_begun: bool = False  # a traffic shift step began: from then on traffic may have moved
    traffic_back: TrafficBack | None = None
    built: tuple[str, ...] = ()  # indexes this run built (not those already there)
    migrate_begun: bool = False
    migrated: bool = False  # the migrations answered (MigrationsApplied): ``built`` is then the whole list
    dropped: tuple[str, ...] = ()
    reverted: bool = False  # the migrations' compensation ran (rollback.drop_indexes: true)
    preflight_gates: int = 0  # preflight gates begun: the current one is the plan's gate of that number
    gate: str = ""  # the gate the run waits at now, as people read it
    approvals: tuple[str, ...] = ()  # "Confirm backup completion: approved by alice: “snapshot 42 verified”"
    operator_actions: tuple[str, ...] = ()  # pauses, continues, aborts and retries, with who and why
    stage_verdicts: tuple[tuple[int, str], ...] = ()  # the coordinator's StageJudged, in order
    # the run's story (shared/story/), for what every output of a run must say alike: breach to rollback
    story: RunStory = field(default_factory=RunStory)

    @property
    def notifications(self) -> Notifications:
        return self.plan.notifications

    @property
    def watching(self) -> bool:
        """A succeeded run whose plan has a post-deploy watch still going: its breaches are still to tell."""
        return self.outcome == "succeeded" and self.plan.post_deploy is not None and not self.watch_ended

    @property
    def stages(self) -> list[Stage]:
        return self.plan.canary.stages
