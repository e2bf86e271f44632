"""Per-window analysis: the verdict on one window of a canary stage's check, and on one window of the guard.

Pure functions of a ProbeWindow and the limits it is held to, and the tally of a stage's verdicts against
plan.Analysis (failure_limit, consecutive_failure_limit, inconclusive); the saga keeps the tally in its state.

- A window is judged by the one judge of thresholds (shared/judge.py), the prober's judge of a probe's totals:
  a check's window against the check's thresholds with the plan's analysis.min_samples (fewer requests:
  **inconclusive**), the guard's window against the guard limits (a gauge never measured: **inconclusive**).
- A probe step's totals (the prober's verdict on a whole hold, check or validation) fail it when a probe failed
  or a check was inconclusive; the guard's inconclusive totals are ignored, as its windows are.
- The tally: failed windows are counted per stage (all its checks together), consecutive failed windows per
  check (windows of several checks interleave, so one check's pass must not hide another's streak). An
  inconclusive window is ignored (neither a failure nor a break of a streak), or a failure with
  ``inconclusive: fail``. Reaching either limit fails the stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import Finding, ProbeCompleted, ProbesCompleted, ProbeWindow
from shared.judge import judge
from shared.plan.canary import Analysis
from shared.plan.checks import Thresholds


@dataclass(frozen=True)
class WindowVerdict:
    """A window's verdict and why, in words a rollback message can quote ("p95 512 ms > 400 ms over 1,204 requests")."""

    verdict: Finding
    why: str
    count: int  # requests in the window, failed ones included
    p95_ms: float | None = None
    error_rate_pct: float | None = None


@dataclass(frozen=True)
class StageTally:
    """The failed windows of one stage hold: all of them, and the current streak of each check."""

    failures: int = 0
    streaks: tuple[tuple[str, int], ...] = ()

    def streak(self, probe: str) -> int:
        return dict(self.streaks).get(probe, 0)


def count_window(tally: StageTally, probe: str, verdict: Finding, policy: Analysis) -> tuple[StageTally, str | None]:
    """Add one check window's verdict to the stage's tally; the limit it reached (why the stage fails), if any."""
    counted = verdict == "fail" or (verdict == "inconclusive" and policy.inconclusive == "fail")
    streaks = dict(tally.streaks)
    if counted:
        streaks[probe] = streaks.get(probe, 0) + 1
    elif verdict == "pass":
        streaks[probe] = 0
    tally = StageTally(tally.failures + counted, tuple(sorted(streaks.items())))
    if counted and tally.streak(probe) >= policy.consecutive_failure_limit:
        return tally, (f"{tally.streak(probe)} consecutive failed windows of {probe} reach consecutive_failure_limit "
                       f"{policy.consecutive_failure_limit}")
    if counted and tally.failures >= policy.failure_limit:
        return tally, f"{tally.failures} failed windows in the stage reach failure_limit {policy.failure_limit}"
    return tally, None


def judge_window(window: ProbeWindow, thresholds: Thresholds, min_samples: int) -> WindowVerdict:
    """The verdict on one window of a check, against the check's thresholds, by the shared judge (shared/judge.py)."""
    judged = judge(window.stats, thresholds, min_samples)
    measured = judged.requests >= min_samples  # a window too thin to judge shows no numbers
    return WindowVerdict(judged.verdict, judged.why, judged.requests, window.stats.p95_ms if measured else None,
                         judged.error_rate_pct if measured else None)


def judge_guard(window: ProbeWindow, limits: dict[str, float]) -> WindowVerdict:
    """The verdict on one window of the guard probe: its worst gauge values against the plan's guard limits."""
    judged = judge(window.stats, Thresholds.model_validate(limits))
    return WindowVerdict(judged.verdict, judged.why, judged.requests)


def totals_failure(answer: ProbeCompleted | ProbesCompleted, guard: str | None) -> str | None:
    """Why a probe step fails on its totals (the answer's summary), or None when it does not.

    It fails when a probe failed, or when a check is inconclusive: no evidence of health is no pass. The guard's
    inconclusive totals are ignored, as its windows are: a tripwire that read nothing has not tripped."""
    results = answer.results if isinstance(answer, ProbesCompleted) else [answer]
    if any(r.finding == "fail" or (r.finding == "inconclusive" and r.probe != guard) for r in results):
        return answer.summary
    return None
