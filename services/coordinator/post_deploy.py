"""The post-deploy watch (the runbook's "next 7 days") as a pure fold: ``decide(state, event | tick)``.

After a run succeeds, if its plan has ``post_deploy``, the new deployment is checked every
``health_every`` for ``period``: each check is one RunProbes of the plan's post-deploy checks. Each answer
becomes a ``watch_check_completed`` event (and ``watch_breached`` when a threshold was breached, which the
notifier sends to Slack); every ``summary_every`` a ``watch_summary`` sums up the checks since the last
one; ``watch_ended`` closes the period.

No I/O and no clock, as saga.decide: time comes from event timestamps and ticks. The watch's own events
carry what it decided (the check's index, when the next one is due), so folding a run's events again
after a restart rebuilds the same watch; folding an event the state already holds changes nothing.
Command and event ids are deterministic, so a check sent twice (after a restart) is deduplicated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from golive.services.coordinator.saga import EmitEvent, Output, SendCommand, Tick
from golive.services.coordinator.steps import probe_command
from golive.shared.commands import RunProbes
from golive.shared.envelope import Envelope
from golive.shared.events import (
    CommandFailed,
    ProbeCompleted,
    ProbesCompleted,
    RunFinished,
    RunStarted,
    WatchBreached,
    WatchCheckCompleted,
    WatchEnded,
    WatchProbe,
    WatchStarted,
    WatchSummary,
)
from golive.shared.judge import error_rate_pct
from golive.shared.plan import Plan, plan_of
from golive.shared.plan.post_deploy import PostDeploy


@dataclass(frozen=True)
class WatchState:
    run_id: str
    plan: Plan
    deploy_id: str
    previous_deploy_id: str | None
    started_at: datetime | None = None  # when the run succeeded; None: not watching (yet)
    checks_done: int = 0
    next_check_at: datetime | None = None
    sent_at: datetime | None = None  # check ``checks_done`` was sent then and is awaited
    breaches: int = 0
    summaries: int = 0
    since_summary: tuple[WatchCheckCompleted, ...] = ()
    last: WatchCheckCompleted | None = None
    ended: bool = False

    @property
    def spec(self) -> PostDeploy:
        assert self.plan.post_deploy is not None
        return self.plan.post_deploy

    @property
    def watching(self) -> bool:
        return self.started_at is not None and not self.ended

    @property
    def ends_at(self) -> datetime | None:
        return self.started_at + timedelta(seconds=self.spec.period) if self.started_at else None

    @property
    def checks_planned(self) -> int:
        """Checks at 0, every, 2*every, ... before the period ends."""
        if not self.spec.checks:
            return 0
        every, period = self.spec.health_every, self.spec.period
        return max(1, -(-int(period * 1000) // int(every * 1000)))

    def summary_due_at(self, index: int) -> datetime | None:
        return self.started_at + timedelta(seconds=(index + 1) * self.spec.summary_every) if self.started_at else None


def check_command_id(run_id: str, index: int) -> str:
    return f"{run_id}/watch/check/{index}"


def decide(state: WatchState | None, item: Envelope | Tick) -> tuple[WatchState | None, list[Output]]:
    """Fold one event or tick into a run's watch; return the new state and what to publish."""
    if isinstance(item, Tick):
        return _on_tick(state, item.now) if state is not None and state.watching else (state, [])
    data = item.data
    if isinstance(data, RunStarted):
        if state is not None:
            return state, []  # a duplicate start
        plan = plan_of(data)  # the run's plan as of today's version
        if plan.post_deploy is None:
            return state, []  # a plan without a watch: nothing to keep
        return WatchState(item.runid, plan, data.deploy_id, data.previous_deploy_id), []
    if state is None or state.ended:
        return state, []
    if isinstance(data, RunFinished):
        return _on_run_finished(state, data, item.time)
    if isinstance(data, WatchCheckCompleted):
        return _record(state, data), []
    if isinstance(data, WatchSummary):
        return (replace(state, summaries=data.index + 1, since_summary=()) if data.index >= state.summaries else state), []
    if isinstance(data, WatchEnded):
        return replace(state, ended=True), []
    if (state.watching and item.correlationid == check_command_id(state.run_id, state.checks_done)
            and isinstance(data, (ProbesCompleted, ProbeCompleted, CommandFailed))):
        return _on_answer(state, data, item.time)
    return state, []


def _on_run_finished(state: WatchState, finished: RunFinished, now: datetime) -> tuple[WatchState, list[Output]]:
    if finished.outcome != "succeeded" or state.started_at is not None:
        return replace(state, ended=True) if finished.outcome != "succeeded" else state, []
    state = replace(state, started_at=now, next_check_at=now)
    spec = state.spec
    started = WatchStarted(deploy_id=state.deploy_id, period_s=spec.period, health_every_s=spec.health_every,
                           summary_every_s=spec.summary_every, ends_at=state.ends_at,
                           checks=[c.probe for c in spec.checks])
    state, outputs = _on_tick(state, now)  # the first check goes at once
    return state, [EmitEvent(f"{state.run_id}/watch/started", started), *outputs]


def _on_tick(state: WatchState, now: datetime) -> tuple[WatchState, list[Output]]:
    outputs: list[Output] = []
    if state.sent_at is not None and now >= state.sent_at + timedelta(seconds=_work_s(state) + state.plan.timeouts.step):
        state, outputs = _complete(state, now, error=f"no answer from the prober by {now:%H:%M:%S}")
    due = state.summary_due_at(state.summaries)
    if due is not None and now >= due and due < state.ends_at:
        state, summary = _summary(state, until=due)
        outputs.append(summary)
    if (state.sent_at is None and state.checks_done < state.checks_planned and state.next_check_at is not None
            and now >= state.next_check_at):
        state, sent = _send_check(state, now)
        outputs.append(sent)
    if now >= state.ends_at and state.sent_at is None:
        if state.since_summary or state.summaries == 0:
            state, summary = _summary(state, until=now)
            outputs.append(summary)
        ended = WatchEnded(checks=state.checks_done, breaches=state.breaches,
                           reason=f"post-deploy period of {_human(state.spec.period)} is over")
        state = replace(state, ended=True)
        outputs.append(EmitEvent(f"{state.run_id}/watch/ended", ended))
    return state, outputs


def _send_check(state: WatchState, now: datetime) -> tuple[WatchState, SendCommand]:
    n = state.checks_done
    label = f"post-deploy check {n + 1}"
    probes = [probe_command(state.plan, check, check.duration or 0.0, label, state.deploy_id, state.previous_deploy_id)
              for check in state.spec.checks]
    command = RunProbes(probes=probes, duration_s=max(p.duration_s for p in probes), label=label)
    # the next check keeps the schedule; after a long pause (the coordinator was down) it waits a full interval
    every = timedelta(seconds=state.spec.health_every)
    following = state.next_check_at + every
    if following <= now:
        following = now + every
    return replace(state, sent_at=now, next_check_at=following), SendCommand(check_command_id(state.run_id, n), command)


def _on_answer(state: WatchState, data, now: datetime) -> tuple[WatchState, list[Output]]:
    if isinstance(data, CommandFailed):
        return _complete(state, now, error=f"the prober could not run the check: {data.reason}")
    results = list(data.results) if isinstance(data, ProbesCompleted) else [data]
    return _complete(state, now, results=results)


def _complete(state: WatchState, now: datetime, results: list[ProbeCompleted] = (), error: str = "") -> tuple[WatchState, list[Output]]:
    n = state.checks_done
    probes = [WatchProbe(probe=r.probe, passed=r.passed, count=r.count, errors=r.errors, p95_ms=r.p95_ms,
                         error_rate_pct=round(error_rate_pct(r.count, r.errors), 3),
                         summary=r.summary) for r in results]
    passed = not error and all(p.passed for p in probes)
    summary = error or "; ".join(p.summary for p in probes) or "no probes"  # the prober's summary names its probe
    done = WatchCheckCompleted(index=n, passed=passed, summary=summary, probes=probes, error=error,
                               next_check_at=state.next_check_at if n + 1 < state.checks_planned else None)
    outputs: list[Output] = [EmitEvent(f"{state.run_id}/watch/check/{n}/completed", done,
                                       correlationid=check_command_id(state.run_id, n))]
    if not passed and not error:
        failed = [p for p in probes if not p.passed]
        breach = WatchBreached(index=n, deploy_id=state.deploy_id, probes=[p.probe for p in failed],
                               reason=f"post-deploy check {n + 1} of {state.deploy_id} failed: "
                                      + "; ".join(p.summary for p in failed))
        outputs.append(EmitEvent(f"{state.run_id}/watch/check/{n}/breached", breach))
    return _record(state, done), outputs


def _record(state: WatchState, done: WatchCheckCompleted) -> WatchState:
    """Fold a completed check (decided here, or read back from the stream); a second time changes nothing."""
    if done.index < state.checks_done:
        return state
    breached = not done.passed and not done.error
    return replace(state, checks_done=done.index + 1, sent_at=None, last=done,
                   next_check_at=done.next_check_at or state.next_check_at,
                   breaches=state.breaches + (1 if breached else 0), since_summary=state.since_summary + (done,))


def _summary(state: WatchState, until: datetime) -> tuple[WatchState, EmitEvent]:
    checks = state.since_summary
    since = state.summary_due_at(state.summaries - 1) if state.summaries else state.started_at
    worst: dict[str, float] = {}
    for check in checks:
        for p in check.probes:
            worst[p.probe] = max(worst.get(p.probe, 0.0), p.p95_ms)
    passed = sum(1 for c in checks if c.passed)
    breaches = sum(1 for c in checks if not c.passed and not c.error)
    text = (f"{passed} of {len(checks)} check(s) passed, {breaches} breach(es)"
            + ("; worst p95 " + ", ".join(f"{p} {v:.1f} ms" for p, v in sorted(worst.items())) if worst else ""))
    summary = WatchSummary(index=state.summaries, since=since, until=until, checks=len(checks), passed=passed,
                           breaches=breaches, worst_p95_ms=worst, summary=text)
    event = EmitEvent(f"{state.run_id}/watch/summary/{state.summaries}", summary)
    return replace(state, summaries=state.summaries + 1, since_summary=()), event


def _work_s(state: WatchState) -> float:
    return max((c.duration or 0.0) + c.load.warmup_s for c in state.spec.checks) if state.spec.checks else 0.0


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
