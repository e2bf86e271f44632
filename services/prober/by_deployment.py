"""Production traffic by deployment: the one stream of a check on the production alias (the provider splits it by
weight between stable and the canary) told apart by the deployment that answered each request, and the canary's
answers judged against stable's within that stream, on the same clock.

Pure: run.py feeds ``DeploymentSplit.record`` every counted request of the check as it completes.

- **Who answered**: the http probe's ``deployment_header`` (x-golive-deployment in the demo app). An answer that names
  neither deployment (a timeout, a refused connection, the proxy's own 503) cannot be charged to either: it is
  counted as *unattributed* and judged only by the stream's own thresholds.
- **Pairs** (open loop, where a tolerance is set: the sequential judge of compare.HoldJudge). A request the canary
  answered is paired with a neighbour in the schedule (the request due one step before it, or after it: by the
  step's parity) when stable answered that one: two requests a fraction of a second apart, so what hits both (load,
  the database, the prober's own machine) cancels.
  The pairing depends only on which deployment answered which request, never on how: when the canary is no
  different from stable, which side of a discordant pair is worse is a fair coin, and the sign test's false-alarm
  bound holds as it does for two targets probed side by side. A canary request whose neighbour was the canary's
  too (or unattributed) counts in the totals only; at 10% canary about 9 in 10 are paired.
- **Closed loop** has no shared schedule and thus no pairs: the canary's and stable's totals are compared at the end
  of the hold (compare.compare, fixed horizon).
"""

from __future__ import annotations

from golive.services.prober.compare import Decision, HoldJudge
from golive.services.prober.sequential import Side
from golive.services.prober.stats import LatencyWindow, Reservoir
from golive.shared.commands import SplitTraffic

FAILED = "failed"  # a failed answer in a deployment's share (the stream's own totals keep the error classes)


class DeploymentSplit:
    """One alias check's answers by deployment: ``canary`` and ``stable`` totals, ``unattributed`` answers, and the
    sequential judge (``judge``) when the check has a tolerance and an open-loop schedule."""

    def __init__(self, split: SplitTraffic, tolerance_ms: float | None, alpha: float, rate: float | None,
                 counted_from: float) -> None:
        self.split = split
        self.canary = LatencyWindow(reservoir=Reservoir(seed=101))
        self.stable = LatencyWindow(reservoir=Reservoir(seed=102))
        self.unattributed = 0
        self.judge = (HoldJudge(tolerance_ms, alpha, rate, counted_from)
                      if tolerance_ms is not None and rate is not None else None)

    def side_of(self, deployment: str | None) -> Side | None:
        """Which side answered, by the deployment its answer named; None: neither."""
        if deployment is None:
            return None
        named = deployment.strip()
        return "canary" if named == self.split.canary else "stable" if named == self.split.stable else None

    def record(self, start: float, latency_ms: float | None, deployment: str | None, now: float) -> Decision | None:
        """One counted request: due at ``start`` (the schedule's clock), answered in ``latency_ms`` (None: failed) by
        ``deployment``. Returns the judge's Decision the first time it finds the canary worse."""
        side = self.side_of(deployment)
        if side is None:
            self.unattributed += 1
            return None
        share = self.canary if side == "canary" else self.stable
        if latency_ms is None:
            share.record_error(FAILED)
        else:
            share.record(latency_ms / 1000.0)
        judge = self.judge
        if judge is None or judge.rate is None:
            return None
        step = round((start - judge.counted_from) * judge.rate)  # the request's place in the schedule
        # a canary request at an even step k pairs with stable at k - 1, at an odd one with stable at k + 1 (the pair's
        # key is the canary's step): no stable request is wanted by two, and the canary's is the later of its pair as
        # often as the earlier, so a load that grows (or falls) through the hold favours neither side
        key = step if side == "canary" else step + 1 if step % 2 else step - 1
        return judge.record_pair(side, key, latency_ms, now, self.canary, self.stable)

    def words(self, header: str) -> str:
        """``x-golive-deployment: canary dpl_2 212, stable dpl_1 1,890, unattributed 3``: who answered how often."""
        counted = (f"{header}: canary {self.split.canary} {self.canary.samples:,}, "
                   f"stable {self.split.stable} {self.stable.samples:,}, unattributed {self.unattributed:,}")
        if self.unattributed and not self.canary.samples and not self.stable.samples:
            # what an SRE checks first: the header the probe reads, and what the platform calls its deployments
            counted += f"; no answer named either deployment in {header}: check the probe's deployment_header"
        return counted
