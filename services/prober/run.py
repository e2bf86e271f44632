"""Probe runs, start to verdict: open the target(s), drive the load, publish windows, judge the total; one
probe, or several at once on one clock (a canary stage's hold).

No bus here: windows go to a ``publish_window`` callback and the result is returned, so the run can be
driven by the service, a test or a benchmark alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from golive.services.prober.by_deployment import DeploymentSplit
from golive.services.prober.compare import MIN_SAMPLES, HoldJudge, compare, sequential_comparison
from golive.services.prober.kinds import ProbeTarget
from golive.services.prober.load import END_GRACE_S, Recorder, run_load
from golive.services.prober.loop_lag import LoopLag
from golive.services.prober.stats import failed_requests, judge
from golive.services.prober.targets import make_target
from golive.shared.commands import RunProbe, RunProbes
from golive.shared.events import Finding, ProbeCompleted, ProbesCompleted, ProbeWindow, Verdict
from golive.shared.judge import overload_words

WindowSink = Callable[[ProbeWindow], Awaitable[None]]
# past the end, its grace and a request's timeout: room for a client-side cancel of a frozen server's query
# to finish (psycopg waits for the server's answer to the cancel) before a load counts as stuck
CUT_AFTER_S = 10.0
# how long the window being published when a hold ends may take (a PubAck's own timeout is 5 s by default)
FEED_CLOSE_S = 10.0


@dataclass
class StopSignal:
    """Set to end a run early; ``reason`` says why (a stop command, the service shutting down)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


async def run_probe(
    cmd: RunProbe, env: dict[str, str], *, command_id: str = "", stop: StopSignal | None = None,
    publish_window: WindowSink | None = None, clock: Callable[[], float] = time.monotonic,
) -> ProbeCompleted:
    """Run ``cmd`` and return its result. Raises ProbeSetupError when the probe cannot start at all."""
    [result] = await run_probes([cmd], env, command_id=command_id, stop=stop, publish_window=publish_window, clock=clock)
    return result


async def run_probes(
    cmds: Sequence[RunProbe], env: dict[str, str], *, command_id: str = "", stop: StopSignal | None = None,
    publish_window: WindowSink | None = None, clock: Callable[[], float] = time.monotonic,
) -> list[ProbeCompleted]:
    """Run every probe of ``cmds`` at once on one clock and return their results in the same order.

    Every target is opened first and then all start together, so a slow connect or sampling query of one
    probe does not shift its windows against the others'. ``stop`` ends them all. Raises ProbeSetupError
    when any probe cannot start (the others are closed again without having sent a request)."""
    stop = stop or StopSignal()
    opened: list[ProbeTarget] = []

    async def open_targets(cmd: RunProbe) -> dict[str, ProbeTarget]:
        targets: dict[str, ProbeTarget] = {"probe": make_target(cmd.probe, env)}
        if cmd.baseline is not None:
            targets["baseline"] = make_target(cmd.baseline, env)
        for target in targets.values():
            opened.append(target)
            await target.open(cmd.concurrency)
        return targets

    try:
        prepared = await asyncio.gather(*(open_targets(cmd) for cmd in cmds), return_exceptions=True)
        for outcome in prepared:
            if isinstance(outcome, BaseException):
                raise outcome
        t0 = clock() + 0.01  # every probe, and each probe's baseline, start on the same schedule
        loop_lag = LoopLag(clock)  # one loop runs them all
        loop_lag.start()
        # the false-alarm budget of the comparisons with stable, shared among the checks compared in this hold
        compared = max(1, sum(1 for cmd in cmds if _judged_sequentially(cmd)))
        runs = [asyncio.create_task(_measure(cmd, targets, command_id, stop, publish_window, clock, t0, loop_lag,
                                             cmd.alpha / compared))
                for cmd, targets in zip(cmds, prepared)]
        try:
            return list(await asyncio.gather(*runs))
        finally:  # one probe's unforeseen error ends the others before their targets close
            loop_lag.stop()
            for task in runs:
                task.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
    finally:
        for target in opened:
            await target.close()


def probes_of(cmd: RunProbes) -> list[RunProbe]:
    """The probes of a RunProbes as they run: the set's duration (one hold for all), the set's label
    where a probe has none."""
    return [probe.model_copy(update={"duration_s": cmd.duration_s, "label": probe.label or cmd.label})
            for probe in cmd.probes]


def probes_completed(results: Sequence[ProbeCompleted], stop: StopSignal) -> ProbesCompleted:
    """The answer to a RunProbes: failed when a probe failed, else inconclusive when one was, else passed; the
    failing probes lead the summary, then the inconclusive ones."""
    failing = [r for r in results if r.finding == "fail"]
    unsure = [r for r in results if r.finding == "inconclusive"]
    passing = [r for r in results if r.finding == "pass"]
    finding: Finding = "fail" if failing else "inconclusive" if unsure else "pass"
    head = (_counted(len(failing), len(results), "failed") if failing else
            _counted(len(unsure), len(results), "inconclusive") if unsure else _counted(len(results), len(results), "passed"))
    summary = "; ".join([head, *(r.summary for r in failing + unsure + passing)])
    return ProbesCompleted(results=list(results), passed=finding == "pass", verdict=finding, summary=summary,
                           duration_s=max((r.duration_s for r in results), default=0.0),
                           stopped=stop.reason if stop.is_set() else None)


def _counted(some: int, of: int, what: str) -> str:
    """``1 probe passed``, ``all 3 probes passed``, ``1 of 3 probes failed``: counted as a person says it."""
    if of == 1:
        return f"1 probe {what}"
    return f"all {of} probes {what}" if some == of else f"{some} of {of} probes {what}"


def _judged_sequentially(cmd: RunProbe) -> bool:
    """A check compared with stable under a tolerance is judged by the sequential judge as its requests complete:
    two targets probed side by side, or the production alias's one open-loop stream split by deployment."""
    compared = cmd.baseline is not None or (cmd.split is not None and cmd.load.mode == "open")
    # a prometheus probe reads aggregates, not requests: no pairs to judge, so no share of the false-alarm budget
    return compared and cmd.thresholds.p95_increase_ms is not None and cmd.probe.kind != "prometheus"


def _listen_by_deployment(split: DeploymentSplit, recorder: Recorder, clock, decided: asyncio.Event) -> None:
    """Feed every counted request of an alias check to ``split``; ``decided`` is set once its judge finds the canary worse."""

    def record(start: float, latency_ms: float | None, deployment: str | None) -> None:
        if split.record(start, latency_ms, deployment, clock()) is not None:
            decided.set()

    recorder.listener = record


def _listen(sequential: HoldJudge, recorders: dict, clock, decided: asyncio.Event) -> None:
    """Feed every counted request of both targets to ``sequential``; ``decided`` is set once it finds the canary worse."""
    probe, baseline = recorders["probe"].total, recorders["baseline"].total

    def heard(side):
        def record(start: float, latency_ms: float | None, _deployment: str | None) -> None:
            if sequential.record(side, start, latency_ms, clock(), probe, baseline) is not None:
                decided.set()
        return record

    recorders["probe"].listener = heard("canary")
    recorders["baseline"].listener = heard("stable")


async def _measure(cmd: RunProbe, targets: dict[str, ProbeTarget], command_id: str, stop: StopSignal,
                   publish_window: WindowSink | None, clock, t0: float, loop_lag: LoopLag,
                   alpha: float) -> ProbeCompleted:
    if skipped := getattr(targets["probe"], "skipped", None):  # the plan lets it skip here (when_unset: skip)
        return _skipped(cmd, skipped)
    rate = cmd.load.rate if cmd.load.mode == "open" else None
    counted_from = t0 + cmd.load.warmup_s
    end = counted_from + cmd.duration_s
    recorders = {name: Recorder.starting(counted_from, reservoir_seed=i, loop_lag=loop_lag)
                 for i, name in enumerate(targets)}
    feed = _WindowFeed(cmd, command_id, recorders, counted_from, publish_window) if cmd.window_s and publish_window else None
    sequential, decided = None, asyncio.Event()
    # a target that reads whole windows (prometheus) has no requests to pair: its fixed-horizon comparison stands
    paired = not any(getattr(target, "reads_windows", False) for target in targets.values())
    split = None
    if cmd.split is not None:  # the production alias: one stream, told apart by the deployment that answered
        split = DeploymentSplit(cmd.split, cmd.thresholds.p95_increase_ms, alpha, rate, counted_from)
        sequential = split.judge
        _listen_by_deployment(split, recorders["probe"], clock, decided)
    elif paired and _judged_sequentially(cmd) and cmd.thresholds.p95_increase_ms is not None:
        sequential = HoldJudge(cmd.thresholds.p95_increase_ms, alpha, rate, counted_from)
        _listen(sequential, recorders, clock, decided)
    loads = [
        asyncio.create_task(_read_windows(target, recorders[name], counted_from, end, feed is None, clock)
                            if getattr(target, "reads_windows", False) else
                            run_load(target, recorders[name], concurrency=cmd.concurrency, rate=rate, t0=t0, end=end, clock=clock))
        for name, target in targets.items()
    ]
    ticking = asyncio.create_task(feed.tick(clock)) if feed else None
    stopper = asyncio.create_task(stop.event.wait())
    decider = asyncio.create_task(decided.wait())  # the canary found worse: the hold ends here, every check of it
    # A load still going past the end, the grace for the last requests, a request's own timeout and CUT_AFTER_S is stuck:
    # it is cut there, so a hold always answers (a run was seen to hang at its end; its windows went on empty).
    cut_at = end + END_GRACE_S + cmd.probe.timeout_ms / 1000 + CUT_AFTER_S
    cutter = asyncio.create_task(_cut_at(cut_at, loads, clock))
    try:
        await asyncio.wait([*loads, stopper, cutter, decider], return_when=asyncio.FIRST_COMPLETED)
        if sequential is not None and sequential.decision is not None:
            stop.set(f"{cmd.probe.name}: the canary is worse than stable: {sequential.decision.reason}")
        if stop.is_set():
            for task in loads:
                task.cancel()
            await asyncio.gather(*loads, return_exceptions=True)
        else:
            # the other target ends on the same schedule
            done, stuck = await asyncio.wait(loads, timeout=max(0.0, cut_at - clock()))
            for task in done:
                if not task.cancelled():  # cancelled: cut as stuck
                    task.result()  # an unforeseen error ends the probe, as before
    finally:
        tasks = [*loads, stopper, cutter, decider]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if feed is not None and ticking is not None:
            await feed.close(ticking)
    finished = min(clock(), end)
    if feed is not None:
        await feed.last(finished)  # the partial last window, so the feed adds up to the result
    return _result(cmd, recorders, max(1e-9, finished - counted_from), stop, feed.index if feed else 0,
                   loop_lag.worst_ms, targets["probe"].shown, sequential, split)


async def _read_windows(target: ProbeTarget, recorder: Recorder, counted_from: float, end: float, whole: bool,
                        clock) -> None:
    """A target that reads its windows (a prometheus probe; reads_windows): the feed reads each window as it
    closes (recorder.source); without a feed the hold is read once, whole, at its end."""

    async def read(seconds: float) -> None:
        window, latencies = await target.read(seconds)  # type: ignore[attr-defined]
        recorder.window.merge(window)
        recorder.total.merge(window)
        if recorder.total.reservoir is not None:  # the baseline comparison's sample
            for latency in latencies:
                recorder.total.reservoir.add(latency)

    recorder.source = read
    await asyncio.sleep(max(0.0, end - clock()))
    if whole:
        await read(end - counted_from)


async def _cut_at(when: float, loads: list[asyncio.Task], clock) -> None:
    """Cancel the loads still running at ``when``: stuck past the end of the hold, its grace and a request's
    timeout, they would keep the hold from answering."""
    await asyncio.sleep(max(0.0, when - clock()))
    for task in loads:
        task.cancel()


class _WindowFeed:
    """Publishes every target's window every ``window_s`` seconds, counted from the end of the warm-up.

    The feed is closed, not cancelled: a window being published when the hold ends is finished first. A
    cancellation is not a reliable stop here: on Python 3.11 ``asyncio.wait_for`` (nats-py awaits a PubAck with
    it) drops a cancel that arrives as its future completes, and a feed relying on it published empty windows
    forever while its hold never answered."""

    def __init__(self, cmd: RunProbe, command_id: str, recorders: dict[str, Recorder], counted_from: float,
                 publish: WindowSink) -> None:
        self.cmd, self.command_id, self.recorders, self.counted_from, self.publish = cmd, command_id, recorders, counted_from, publish
        self.index = 0  # windows this command sent; each is published as cmd.first_window + its number here
        self._closing = asyncio.Event()

    async def tick(self, clock) -> None:
        # the warm-up's results are not recorded, so the first window starts empty at counted_from
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while not self._closing.is_set():
                boundary = self.counted_from + (self.index + 1) * self.cmd.window_s
                if boundary >= self.counted_from + self.cmd.duration_s - 1e-6:
                    # the hold's last window closes when its loads are done (last()): the requests its grace still
                    # sends and those it never sent (unsent) belong to it, so the windows add up to the result
                    await closing
                    return
                await asyncio.wait([closing], timeout=max(0.0, boundary - clock()))
                if self._closing.is_set():
                    return  # the rest of this window is the hold's last, published by last()
                await self._emit(self.cmd.window_s)
        finally:
            closing.cancel()

    async def close(self, ticking: asyncio.Task) -> None:
        """Stop ticking once the window in flight (if any) is published; bounded by the publish timeout and
        then cancelled, again and again until it is done, since one cancel can be dropped."""
        self._closing.set()
        await asyncio.wait([ticking], timeout=FEED_CLOSE_S)
        while not ticking.done():
            ticking.cancel()
            await asyncio.wait([ticking], timeout=0.1)

    async def last(self, finished: float) -> None:
        start = self.counted_from + self.index * self.cmd.window_s
        if finished - start > 0.001:
            await self._emit(finished - start)

    async def _emit(self, seconds: float) -> None:
        index, self.index = self.index, self.index + 1
        reads = [recorder.source(seconds) for recorder in self.recorders.values() if recorder.source is not None]
        if reads:  # targets that read their windows (a prometheus probe): read now, as the window closes
            await asyncio.gather(*reads)
        for name, recorder in self.recorders.items():
            closed = recorder.rotate()
            spec = self.cmd.probe if name == "probe" else self.cmd.baseline
            window = ProbeWindow(command_id=self.command_id, probe=spec.name, label=self.cmd.label, target=name,
                                 index=self.cmd.first_window + index, start_s=round(index * self.cmd.window_s, 3),
                                 seconds=round(seconds, 3),
                                 stats=closed.summary(seconds, self.cmd.alpha))
            try:
                await self.publish(window)
            except Exception:  # a window that cannot be published is lost from the feed, not from the result
                pass


def _skipped(cmd: RunProbe, why: str) -> ProbeCompleted:
    """A check that did not run, by the plan's leave: no windows, no numbers, the reason first in its summary."""
    return ProbeCompleted(probe=cmd.probe.name, label=cmd.label, kind=cmd.probe.kind, count=0, errors=0,
                          errors_by_class={}, p50_ms=0.0, p90_ms=0.0, p95_ms=0.0, p99_ms=0.0, max_ms=0.0, duration_s=0.0,
                          verdicts=[], passed=True, summary=f"{cmd.probe.name}: skipped: {why}", mode=cmd.load.mode,
                          verdict="pass")


def _result(cmd: RunProbe, recorders: dict[str, Recorder], measured_s: float, stop: StopSignal, windows_sent: int,
            worst_lag_ms: float, shown: str = "", sequential: HoldJudge | None = None,
            split: DeploymentSplit | None = None) -> ProbeCompleted:
    recorder = recorders["probe"]
    total = recorder.total  # its unsent requests are failures already (Recorder.count_unsent)
    judged = judge(total, cmd.thresholds, cmd.alpha)
    verdicts, finding, summary = judged.verdicts(), judged.verdict, judged.why
    comparison = baseline = None
    # canary against stable: the probe against its baseline target, or the alias's answers by deployment
    sides, against = None, "the baseline"
    if "baseline" in recorders:
        base = recorders["baseline"]
        sides = total, base.total
    elif split is not None:
        sides = split.canary, split.stable
        against = f"stable, by deployment ({split.words(getattr(cmd.probe, 'deployment_header', 'deployment'))})"
    if sides is not None:
        canary_side, stable_side = sides
        baseline = stable_side.summary(measured_s, cmd.alpha)
        comparison = compare(canary_side, stable_side, cmd.thresholds.p95_increase_ms)
        if sequential is not None:
            comparison = sequential_comparison(comparison, sequential)
        compared = min(comparison.samples, comparison.baseline_samples) >= MIN_SAMPLES
        if split is not None and not compared and comparison.verdict != "worse":
            # the alias's comparison comes on top of the stream's own limits, which judged every answer: a canary
            # share too thin to compare (a short hold at 10%) is said, not counted as a limit passed or failed
            summary += (f"; by deployment: too few answers to compare ({comparison.samples:,} canary, "
                        f"{comparison.baseline_samples:,} stable; {MIN_SAMPLES} each needed)")
        elif cmd.thresholds.p95_increase_ms is not None:
            ok = comparison.verdict != "worse"
            # too few samples to compare (none read: a prometheus server down) is no evidence: not a passed limit
            verdicts.append(Verdict(metric="p95_increase_ms", limit=cmd.thresholds.p95_increase_ms,
                                    observed=comparison.p95_delta_ms, passed=ok and compared,
                                    samples=comparison.samples + comparison.baseline_samples))
            finding = finding if ok else "fail"
        summary += f"; against {against}: {comparison.reason}"
    if total.late or recorder.unsent:  # open loop: the target did not keep up with the rate
        summary += f"; {open_loop_words(total.late, recorder.unsent)}"
    if total.overloaded:  # judged on the requests the prober could time; these it could not
        summary += f"; {overload_words(worst_lag_ms, total.overloaded)}"
    if stop.is_set():
        summary += f"; stopped early: {stop.reason}"
    stats = total.summary(measured_s, cmd.alpha)
    # which endpoint, how many requests failed and how: what an on-call engineer reads first in a failed probe
    summary = "; ".join(part for part in (failed_requests(stats), summary) if part)
    head = f"{cmd.probe.name}: {shown}" if shown else cmd.probe.name
    return ProbeCompleted(
        probe=cmd.probe.name, label=cmd.label, kind=cmd.probe.kind, count=stats.count, errors=stats.errors,
        errors_by_class=stats.errors_by_class, p50_ms=stats.p50_ms, p90_ms=stats.p90_ms, p95_ms=stats.p95_ms,
        p99_ms=stats.p99_ms, max_ms=stats.max_ms, duration_s=round(measured_s, 3), verdicts=verdicts, passed=finding == "pass",
        summary=f"{head}: {summary}", mode=cmd.load.mode or "closed", target_rate=cmd.load.rate if cmd.load.mode == "open" else None,
        achieved_rate=stats.achieved_rate, gauges=stats.gauges, windows=windows_sent,
        stopped=stop.reason if stop.is_set() else None, baseline=baseline, comparison=comparison, verdict=finding,
        prober_lag_ms=round(worst_lag_ms, 3), overloaded=total.overloaded, late=stats.late, unsent=stats.unsent,
    )


def open_loop_words(late: int, unsent: int) -> str:
    """``312 requests sent late (every worker busy), 4 never sent``: an open-loop target that did not keep up."""
    parts = [f"{late:,} requests sent late (every worker busy)"] if late else []
    parts += [f"{unsent:,} never sent"] if unsent else []
    return ", ".join(parts)
