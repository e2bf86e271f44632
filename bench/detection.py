"""detection: how soon a bad canary fails its stage, and how often a good one does, sequential judge against fixed windows.

Simulated request streams replayed through the same code the services run: the prober's HoldJudge
(services/prober/compare.py, the sequential judge of canary against stable) request by request, and the per-window
analysis (shared/judge.py's judge of thresholds on the prober's LatencyWindow, services/coordinator/analysis.py's
tally) window by window, with the runbook's stage 1 (golive/plans/supabase-golive.yaml):

- app_health: the canary's health endpoint, open loop at 15 requests/s, p95 < 400 ms and no errors; stable's probed
  beside it at the same rate (baseline p95_increase_ms 50), which the sequential judge compares pair by pair;
- production_api: the alias at 20 requests/s, 10% of them to the canary, p95 < 400 ms and errors < 1% (0.1% of
  requests fail on either deployment, the background noise of production);
- fixed windows: 30 s windows, a stage fails on 2 consecutive failed windows of a check (or 3 in the stage), and at
  the end of the hold on the fixed-horizon comparison with stable (Mann-Whitney, services/prober/compare.py).

Latency of a healthy request: 10 ms x lognormal(0, 0.5) (p95 about 23 ms, the demo's scale). The fault is in the
canary from the start of the stage (the onset is the hold's start): a share of its requests fail, or every request
takes longer. Late onset: 5% errors and +300 ms starting 120 s into a 300 s hold, after 1,800 healthy pairs, their
delay from the onset printed beside the same faults' from the start of the same holds (the sequential judge's), and
the new judgement's; a hold failed before the onset is counted as early (a false alarm). The new judgement is the
sequential judge *and* the per-window analysis it runs beside: a stage fails at whichever fails it first. A/A:
healthy holds of 5 minutes (the demo's hold), counted as false alarms when anything fails them; "busy core" models
the prober's machine stalling: at 5% of due instants a stall (exponential, mean 150 ms) delays every request due
then, on both deployments alike, as a busy core delays the prober's one loop.

Printed: per case the median and p95 seconds from onset to the stage failing for both, the late-onset table, the
false-alarm rates, and the last line ``detection: ... (target ...): met|missed``. Targets (issue 16): 5% errors and
+300 ms failed in a median under 10 s; from a late onset, a median at most 1.5x the one from the start; false alarms
at most alpha (1%); nothing the fixed windows catch missed, late or not. Exit 1 when missed.

``--recorded``: the same holds cut from request streams recorded on the embedded stack instead (bench/recorded/, made
by bench/stream_recording.py, which says how they are recorded and cut): the demo app's real latencies, its faults in
measured amounts, and a busy core that is a real one (the A/A holds by block resampling of 10 minutes of each).

Run: ``python bench/detection.py [--rounds 25] [--holds 200] [--seed 1] [--recorded]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from bench.stream_recording import RECORDED, Recordings  # noqa: E402
from golive.services.coordinator.analysis import StageTally, count_window  # noqa: E402
from golive.services.prober.compare import HoldJudge, compare  # noqa: E402
from golive.services.prober.stats import LatencyWindow, Reservoir  # noqa: E402
from golive.shared.judge import judge  # noqa: E402
from golive.shared.plan.canary import Analysis  # noqa: E402
from golive.shared.plan.checks import Thresholds  # noqa: E402

NAME = "detection"
ALPHA = 0.01
HEALTH_RATE, PROD_RATE, CANARY_SHARE = 15.0, 20.0, 0.10
TOLERANCE_MS = 50.0
HOLD_S, AA_HOLD_S, WINDOW_S = 1800.0, 300.0, 30.0
PROD_NOISE = 0.001
HEALTH = Thresholds(error_rate_pct=0, p95_ms=400)
PROD = Thresholds(error_rate_pct=1.0, p95_ms=400)
POLICY = Analysis(interval=WINDOW_S, min_samples=20, failure_limit=3, consecutive_failure_limit=2)
TARGET_MEDIAN_S = 10.0
TARGET_LATE_RATIO = 1.5  # a fault from LATE_ONSET_S found at most this much later after its onset than from the start


@dataclass(frozen=True)
class Fault:
    name: str
    errors: float = 0.0  # share of the canary's requests that fail
    added_ms: float = 0.0  # added to every canary request
    onset_s: float = 0.0  # seconds into the hold at which the fault starts (the canary is healthy before)


CASES = [Fault("2% errors", errors=0.02), Fault("5% errors", errors=0.05), Fault("20% errors", errors=0.20),
         Fault("+100 ms", added_ms=100), Fault("+300 ms", added_ms=300), Fault("+600 ms", added_ms=600)]
HEALTHY = Fault("A/A")
# the same faults starting late in a hold of the demo's length, after hundreds of healthy pairs
LATE_ONSET_S, LATE_HOLD_S = 120.0, 300.0
LATE_CASES = [Fault("5% errors", errors=0.05, onset_s=LATE_ONSET_S), Fault("+300 ms", added_ms=300, onset_s=LATE_ONSET_S)]


class Traffic:
    """The request streams of one hold: latencies in ms (None: failed), the busy core's stalls shared by an instant."""

    def __init__(self, fault: Fault, seed: int, busy: bool) -> None:
        self.fault, self.rng, self.busy = fault, random.Random(seed), busy

    def stall(self) -> float:
        return self.rng.expovariate(1 / 150) if self.busy and self.rng.random() < 0.05 else 0.0

    def request(self, canary: bool, stall: float, at_s: float, noise: float = 0.0) -> float | None:
        """A request due ``at_s`` into the hold: its latency in ms, None when it failed."""
        faulty = canary and at_s >= self.fault.onset_s
        if self.rng.random() < noise or (faulty and self.rng.random() < self.fault.errors):
            return None
        return 10 * self.rng.lognormvariate(0, 0.5) + (self.fault.added_ms if faulty else 0.0) + stall


def record(window: LatencyWindow, ms: float | None) -> None:
    window.record_error("http_5xx") if ms is None else window.record(ms / 1000)


def sequential_s(fault: Fault, seed: int, hold_s: float, busy: bool) -> float | None:
    """Seconds into the hold at which the sequential judge finds the canary worse; None: not within the hold."""
    traffic = Traffic(fault, seed, busy)
    judged = HoldJudge(TOLERANCE_MS, ALPHA, HEALTH_RATE, 0.0)
    canary, stable = LatencyWindow(), LatencyWindow()
    for i in range(int(hold_s * HEALTH_RATE)):
        due, stall = i / HEALTH_RATE, traffic.stall()
        pair = (("canary", canary, traffic.request(True, stall, due)), ("stable", stable, traffic.request(False, stall, due)))
        done = due + max(ms or 0.0 for _, _, ms in pair) / 1000
        for side, window, ms in pair:
            record(window, ms)
            # the prober hands the judge the target's own time to answer: a stall is the prober's, not the target's
            answered = None if ms is None else max(0.0, ms - stall)
            if (decision := judged.record(side, due, answered, done, canary, stable)) is not None:  # type: ignore[arg-type]
                return decision.at_s
    return None


def fixed_windows_s(fault: Fault, seed: int, hold_s: float, busy: bool) -> float | None:
    """Seconds into the hold at which the per-window analysis fails the stage (or the end-of-hold comparison)."""
    traffic = Traffic(fault, seed + 10_000, busy)
    tally = StageTally()
    canary_total, stable_total = LatencyWindow(reservoir=Reservoir(seed=1)), LatencyWindow(reservoir=Reservoir(seed=2))
    for index in range(int(hold_s / WINDOW_S)):
        health, prod = LatencyWindow(), LatencyWindow()
        for i in range(int(WINDOW_S * HEALTH_RATE)):
            stall, at_s = traffic.stall(), index * WINDOW_S + i / HEALTH_RATE
            ms = traffic.request(True, stall, at_s)
            record(health, ms)
            record(canary_total, ms)
            record(stable_total, traffic.request(False, stall, at_s))
        for i in range(int(WINDOW_S * PROD_RATE)):
            at_s = index * WINDOW_S + i / PROD_RATE
            record(prod, traffic.request(traffic.rng.random() < CANARY_SHARE, traffic.stall(), at_s, PROD_NOISE))
        for check, window, limits in (("app_health", health, HEALTH), ("production_api", prod, PROD)):
            verdict = judge(window.summary(WINDOW_S), limits, POLICY.min_samples).verdict
            tally, limit = count_window(tally, check, verdict, POLICY)
            if limit is not None:
                return (index + 1) * WINDOW_S
    if compare(canary_total, stable_total, TOLERANCE_MS).verdict == "worse":
        return hold_s  # the comparison with stable, on the hold's totals
    return None


def spread(times: list[float | None], hold_s: float) -> tuple[str, str, int]:
    """(median, p95, missed) as printed: a hold that never failed counts as past its end."""
    values = sorted(hold_s * 10 if t is None else t for t in times)
    missed = sum(t is None for t in times)

    def shown(v: float) -> str:
        return "never" if v > hold_s else f"{v:.1f}"

    return shown(statistics.median(values)), shown(values[min(len(values) - 1, int(0.95 * len(values)))]), missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="holds per fault case")
    parser.add_argument("--holds", type=int, default=200, help="healthy (A/A) holds, each with and without a busy core")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recorded", nargs="?", const=RECORDED, type=Path, metavar="DIR",
                        help="replay the request streams recorded on the embedded stack (default bench/recorded/)")
    args = parser.parse_args()
    if args.recorded:
        global Traffic  # every hold's requests from the recordings, read by the judges as the simulated ones are
        Traffic = Recordings(args.recorded).traffic  # type: ignore[misc,assignment]

    streams = "recorded" if args.recorded else "simulated"
    print(f"{NAME}: runbook stage 1 (10% canary; app_health 15/s vs stable, production_api 20/s), {streams} request "
          f"streams through the prober's HoldJudge and the per-window analysis; {args.rounds} holds per case, "
          f"seconds from onset to the stage failing")
    print(f"{'case':<12} {'sequential median':>18} {'p95':>7} {'fixed windows median':>21} {'p95':>7}")
    medians: dict[str, float] = {}
    lost: list[str] = []
    for fault in CASES:
        new, old = [], []
        for r in range(args.rounds):
            seed = args.seed * 1_000_003 + r
            windows = fixed_windows_s(fault, seed, HOLD_S, False)
            sequential = sequential_s(fault, seed, windows if windows is not None else HOLD_S, False)
            new.append(min(t for t in (sequential, windows) if t is not None) if windows or sequential else None)
            old.append(windows)
        seq_median, seq_p95, seq_missed = spread(new, HOLD_S)
        fix_median, fix_p95, fix_missed = spread(old, HOLD_S)
        medians[fault.name] = statistics.median(HOLD_S * 10 if t is None else t for t in new)
        if seq_missed > fix_missed:
            lost.append(fault.name)
        print(f"{fault.name:<12} {seq_median:>18} {seq_p95:>7} {fix_median:>21} {fix_p95:>7}")

    # the late faults, and the same faults from the start of the same holds: the delay from onset side by side
    print(f"late onset at {LATE_ONSET_S:.0f} s of a {LATE_HOLD_S:.0f} s hold, seconds from onset to the stage failing "
          f"(sequential judge alone; the new judgement is it or the fixed windows)")
    print(f"{'case':<12} {'from the start':>15} {'p95':>7} {'from ' + f'{LATE_ONSET_S:.0f} s':>9} {'p95':>7} "
          f"{'ratio':>6} {'new judgement':>14} {'p95':>7} {'early':>6}")
    late_medians: dict[str, float] = {}
    late_ratios: dict[str, float] = {}
    for fault in LATE_CASES:
        start = Fault(fault.name, fault.errors, fault.added_ms)
        from_start, from_onset, judged, windows_only, early = [], [], [], [], 0
        for r in range(args.rounds):
            seed = args.seed * 3_000_017 + r
            from_start.append(sequential_s(start, seed, LATE_HOLD_S, False))
            sequential = sequential_s(fault, seed, LATE_HOLD_S, False)
            windows = fixed_windows_s(fault, seed, LATE_HOLD_S, False)
            first = min((t for t in (sequential, windows) if t is not None), default=None)
            if first is not None and first < fault.onset_s:  # failed while the canary was still healthy: a false alarm
                early += 1
                continue
            from_onset.append(None if sequential is None else sequential - fault.onset_s)
            judged.append(None if first is None else first - fault.onset_s)
            windows_only.append(None if windows is None else windows - fault.onset_s)
        after = LATE_HOLD_S - fault.onset_s
        start_median, start_p95, _ = spread(from_start, LATE_HOLD_S)
        late_median, late_p95, _ = spread(from_onset, after)
        new_median, new_p95, new_missed = spread(judged, after)
        if new_missed > spread(windows_only, after)[2]:
            lost.append(f"{fault.name} from {fault.onset_s:.0f} s")
        ratio = (statistics.median(after * 10 if t is None else t for t in from_onset)
                 / statistics.median(LATE_HOLD_S * 10 if t is None else t for t in from_start))
        late_medians[fault.name] = statistics.median(after * 10 if t is None else t for t in judged)
        late_ratios[fault.name] = ratio
        print(f"{fault.name:<12} {start_median:>15} {start_p95:>7} {late_median:>9} {late_p95:>7} {ratio:>6.2f} "
              f"{new_median:>14} {new_p95:>7} {early:>6}")

    rates = {}
    for busy in (False, True):
        alarms_seq = alarms_fixed = alarms_new = 0
        for h in range(args.holds):
            seed = args.seed * 7_000_003 + h + (500_000 if busy else 0)
            seq = sequential_s(HEALTHY, seed, AA_HOLD_S, busy) is not None
            fixed = fixed_windows_s(HEALTHY, seed, AA_HOLD_S, busy) is not None
            alarms_seq += seq
            alarms_fixed += fixed
            alarms_new += seq or fixed
        rates[busy] = alarms_new / args.holds
        print(f"A/A {'busy core' if busy else 'idle':<9}: {args.holds} healthy {AA_HOLD_S:.0f} s holds failed: "
              f"sequential judge {alarms_seq}, fixed windows {alarms_fixed}, the new judgement (either) {alarms_new} "
              f"({100 * rates[busy]:.1f}%)")

    fast = medians["5% errors"] < TARGET_MEDIAN_S and medians["+300 ms"] < TARGET_MEDIAN_S
    late_fast = max(late_ratios.values()) <= TARGET_LATE_RATIO
    quiet = max(rates.values()) <= ALPHA
    met = fast and late_fast and quiet and not lost
    print(f"{NAME}: 5% errors median {medians['5% errors']:.1f} s, +300 ms median {medians['+300 ms']:.1f} s "
          f"(target < {TARGET_MEDIAN_S:g} s), from a late onset {late_medians['5% errors']:.1f} s and "
          f"{late_medians['+300 ms']:.1f} s, {late_ratios['5% errors']:.2f}x and {late_ratios['+300 ms']:.2f}x the "
          f"sequential judge's from the start (target <= {TARGET_LATE_RATIO:g}x), false alarms "
          f"{100 * max(rates.values()):.1f}% (target <= {100 * ALPHA:g}%), "
          f"missed where fixed windows catch: {', '.join(lost) or 'none'} (target none): {'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
