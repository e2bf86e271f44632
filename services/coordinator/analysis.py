"""Per-window analysis: the verdict on one window of a canary stage's check, and on one window of the guard.

Pure functions of a ProbeWindow and the limits it is held to, and the tally of a stage's verdicts against
plan.Analysis (failure_limit, consecutive_failure_limit, inconclusive); the saga keeps the tally in its state.

- A window is judged by the one judge of thresholds (shared/judge.py), the prober's judge of a probe's totals:
  a check's window against the check's thresholds with the plan's analysis.min_samples (fewer requests:
  **inconclusive**), the guard's window against the guard limits (a gauge never measured: **inconclusive**).
- A probe step's totals (the prober's verdict on a whole check or validation) fail it when a probe failed or was
  inconclusive. A stage hold's totals fail it when a probe failed; an inconclusive one (check or guard) goes to
  the plan's ``analysis.inconclusive`` policy, as inconclusive windows do.
- The tally: failed windows are counted per stage (all its checks together), consecutive failed windows per
  probe (windows of several checks interleave, so one check's pass must not hide another's streak), and each
  probe's conclusive and inconclusive windows (the guard's too: a gauge that could not be read is no pass).
  With ``inconclusive: fail`` an inconclusive window is a failed window; otherwise it is neither a failure nor
  a break of a streak. Reaching either limit fails the stage.
- **Slowness is never silence**: a hold ends *inconclusive* when a probe's totals are inconclusive, or when one
  of its probes had no conclusive window, or more inconclusive windows than conclusive ones (a probe whose
  windows were mostly too thin to judge gave no evidence of health). The policy then pauses the run (``pause``:
  it waits for `golive continue`), fails the stage (``fail``) or holds once more for the hold's length to
  collect evidence (``extend``, then pauses if still inconclusive).
"""

from __future__ import annotations

from dataclasses import dataclass

from golive.shared.events import Finding, ProbeCompleted, ProbesCompleted, ProbeWindow
from golive.shared.judge import judge
from golive.shared.plan.canary import Analysis
from golive.shared.plan.checks import Thresholds


@dataclass(frozen=True)
class WindowVerdict:
    """A window's verdict and why, in words a rollback message can quote ("p95 512 ms > 400 ms over 1,204 requests")."""

    verdict: Finding
    why: str
    count: int  # requests in the window, failed ones included
    p95_ms: float | None = None
    error_rate_pct: float | None = None


@dataclass(frozen=True)
class Evidence:
    """One probe's windows in a stage hold: how many were judged (pass or fail) and how many were not, and why the
    last one was not ("5 requests < min_samples 20", "replica_lag_s unread (...)")."""

    probe: str
    conclusive: int = 0
    inconclusive: int = 0
    why: str = ""

    @property
    def wanting(self) -> bool:
        """Too little evidence: no conclusive window at all, or more inconclusive windows than conclusive ones."""
        return self.inconclusive > 0 and (self.conclusive == 0 or self.inconclusive > self.conclusive)

    def words(self) -> str:
        last = f" (last: {self.why})" if self.why else ""
        return (f"{self.probe} {self.inconclusive} of {self.conclusive + self.inconclusive} windows "
                f"inconclusive{last}")


@dataclass(frozen=True)
class StageTally:
    """The windows of one stage hold: failed ones, the current streak of each probe, and each probe's evidence."""

    failures: int = 0
    streaks: tuple[tuple[str, int], ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def streak(self, probe: str) -> int:
        return dict(self.streaks).get(probe, 0)

    @property
    def inconclusive(self) -> int:
        """Inconclusive windows of the hold, all probes together."""
        return sum(e.inconclusive for e in self.evidence)


def _with_evidence(evidence: tuple[Evidence, ...], probe: str, verdict: Finding, why: str) -> tuple[Evidence, ...]:
    known = next((e for e in evidence if e.probe == probe), Evidence(probe))
    if verdict == "inconclusive":
        known = Evidence(probe, known.conclusive, known.inconclusive + 1, why)
    else:
        known = Evidence(probe, known.conclusive + 1, known.inconclusive, known.why)
    return tuple(sorted((*(e for e in evidence if e.probe != probe), known), key=lambda e: e.probe))


def count_window(tally: StageTally, probe: str, verdict: Finding, policy: Analysis,
                 why: str = "") -> tuple[StageTally, str | None]:
    """Add one window's verdict (a check's or the guard's) to the stage's tally; the limit it reached (why the
    stage fails), if any."""
    counted = verdict == "fail" or (verdict == "inconclusive" and policy.inconclusive == "fail")
    streaks = dict(tally.streaks)
    if counted:
        streaks[probe] = streaks.get(probe, 0) + 1
    elif verdict == "pass":
        streaks[probe] = 0
    tally = StageTally(tally.failures + counted, tuple(sorted(streaks.items())),
                       _with_evidence(tally.evidence, probe, verdict, why))
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


def totals_failure(answer: ProbeCompleted | ProbesCompleted, hold: bool) -> str | None:
    """Why a probe step fails on its totals (the answer's summary), or None when it does not.

    It fails when a probe failed, or (not a stage hold) when one is inconclusive: no evidence of health is no
    pass. A stage hold's inconclusive totals go to the inconclusive policy instead (``inconclusive_hold``)."""
    results = answer.results if isinstance(answer, ProbesCompleted) else [answer]
    if any(r.finding == "fail" or (r.finding == "inconclusive" and not hold) for r in results):
        return answer.summary
    return None


def inconclusive_hold(tally: StageTally, answer: ProbeCompleted | ProbesCompleted) -> str | None:
    """Why a stage hold that did not fail ended inconclusive, with the counts; None when it gave evidence enough.

    Inconclusive: a probe's totals inconclusive (the prober's words), or a probe with no conclusive window or more
    inconclusive windows than conclusive ones (the guard's as the checks': an unread gauge is no pass)."""
    results = answer.results if isinstance(answer, ProbesCompleted) else [answer]
    reasons = [e.words() for e in tally.evidence if e.wanting]
    wanting = {e.probe for e in tally.evidence if e.wanting}
    reasons += [f"{r.probe} totals inconclusive: {r.summary}" for r in results
                if r.finding == "inconclusive" and r.probe not in wanting]
    if not reasons:
        return None
    return f"{tally.inconclusive} inconclusive windows; " + "; ".join(reasons)
