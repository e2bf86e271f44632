"""The post-deploy watch's pure fold: decide(state, event | tick), driven without NATS or a clock."""

from __future__ import annotations

from datetime import timedelta

from golive.services.coordinator.post_deploy import WatchState, check_command_id, decide
from golive.services.coordinator.saga import EmitEvent, SendCommand, Tick
from golive.shared.commands import RunProbes
from golive.shared.events import (
    CommandFailed,
    ProbesCompleted,
    RunFinished,
    WatchBreached,
    WatchCheckCompleted,
    WatchEnded,
    WatchStarted,
    WatchSummary,
)
from tests.unit.report_runs import T0, WATCHED_PLAN, RunBuilder

HOUR = timedelta(hours=1)


class Watch:
    """Feeds one run's events and ticks through decide(), as the shell would, keeping what it published."""

    def __init__(self, plan=WATCHED_PLAN) -> None:
        self.run = RunBuilder("run-w", plan=plan)
        self.state: WatchState | None = None
        self.outputs: list = []
        self.feed(self.run.events[0])

    def feed(self, envelope) -> list:
        self.state, outputs = decide(self.state, envelope)
        self.outputs += outputs
        return outputs

    def event(self, at: timedelta, data, correlationid: str | None = None) -> list:
        return self.feed(self.run.add(data, at.total_seconds(), correlationid=correlationid))

    def tick(self, at: timedelta) -> list:
        self.state, outputs = decide(self.state, Tick(T0 + at))
        self.outputs += outputs
        return outputs

    def succeed(self) -> list:
        return self.event(timedelta(minutes=30), RunFinished(outcome="succeeded", reason="ok", duration_s=1800))

    def answer(self, at: timedelta, index: int, p95: float) -> list:
        self.run.result(at.total_seconds(), p95, passed=p95 <= 50, label=f"post-deploy check {index + 1}")
        result = self.run.events.pop().data
        return self.event(at, ProbesCompleted(results=[result], passed=result.passed, summary=result.summary,
                                              duration_s=30), correlationid=check_command_id("run-w", index))


def sent(outputs) -> list[SendCommand]:
    return [o for o in outputs if isinstance(o, SendCommand)]


def emitted(outputs, kind) -> list:
    return [o.data for o in outputs if isinstance(o, EmitEvent) and isinstance(o.data, kind)]


START = timedelta(minutes=30)


def test_watch_starts_when_the_run_succeeds_and_sends_the_first_check_at_once():
    watch = Watch()
    outputs = watch.succeed()
    [started] = emitted(outputs, WatchStarted)
    assert started.ends_at == T0 + START + timedelta(days=7) and started.checks == ["recent"]
    [check] = sent(outputs)
    assert check.id == "run-w/watch/check/0" and isinstance(check.data, RunProbes)
    assert check.data.probes[0].probe.name == "recent" and check.data.label == "post-deploy check 1"
    assert watch.state.checks_planned == 7 * 24


def test_no_watch_after_a_rollback_or_without_post_deploy():
    watch = Watch()
    watch.event(START, RunFinished(outcome="rolled_back", reason="p95", duration_s=1))
    assert watch.tick(START + HOUR) == [] and not watch.state.watching
    plain = Watch(plan=WATCHED_PLAN.model_copy(update={"post_deploy": None}))
    assert plain.state is None and plain.succeed() == []


def test_checks_follow_health_every_one_at_a_time():
    watch = Watch()
    watch.succeed()
    assert watch.tick(START + timedelta(seconds=60)) == []  # check 0 is in flight, the next is not due
    [done] = emitted(watch.answer(START + timedelta(seconds=31), 0, p95=12.0), WatchCheckCompleted)
    assert done.passed and done.index == 0 and done.next_check_at == T0 + START + HOUR
    assert watch.tick(START + timedelta(minutes=59)) == []
    [check] = sent(watch.tick(START + HOUR))
    assert check.id == "run-w/watch/check/1"


def test_a_breaching_check_emits_watch_breached_with_its_numbers():
    watch = Watch()
    watch.succeed()
    outputs = watch.answer(START + timedelta(seconds=31), 0, p95=80.0)
    [breach] = emitted(outputs, WatchBreached)
    assert breach.probes == ["recent"] and breach.deploy_id == "dpl_new"
    assert breach.reason.startswith("post-deploy check 1 of dpl_new failed: recent p95 80.0 ms")
    assert watch.state.breaches == 1 and watch.state.last.passed is False


def test_a_check_the_prober_cannot_run_is_an_error_not_a_breach():
    watch = Watch()
    watch.succeed()
    outputs = watch.event(START, CommandFailed(service="prober", command_type="run_set", reason="db down"),
                          correlationid=check_command_id("run-w", 0))
    [done] = emitted(outputs, WatchCheckCompleted)
    assert not done.passed and "db down" in done.error and not emitted(outputs, WatchBreached)
    # and an answer that never comes fails the check after its duration plus the step timeout
    watch.tick(START + HOUR)
    [late] = emitted(watch.tick(START + HOUR + timedelta(seconds=91)), WatchCheckCompleted)
    assert late.index == 1 and late.error.startswith("no answer from the prober")


def test_a_daily_summary_sums_up_the_checks_since_the_previous_one():
    watch = Watch()
    watch.succeed()
    for n in range(24):
        watch.tick(START + n * HOUR)
        watch.answer(START + n * HOUR + timedelta(seconds=31), n, p95=80.0 if n == 5 else 10.0 + n)
    [summary] = emitted(watch.tick(START + timedelta(days=1)), WatchSummary)
    assert (summary.index, summary.checks, summary.passed, summary.breaches) == (0, 24, 23, 1)
    assert summary.worst_p95_ms == {"recent": 80.0}
    assert summary.since == T0 + START and summary.until == T0 + START + timedelta(days=1)


def test_the_watch_ends_after_its_period_with_a_last_summary():
    plan = WATCHED_PLAN.model_copy(update={"post_deploy": WATCHED_PLAN.post_deploy.model_copy(
        update={"period": 3.0, "health_every": 1.0, "summary_every": 86400.0})})
    watch = Watch(plan)
    watch.succeed()
    second = timedelta(seconds=1)
    for n in range(3):
        watch.tick(START + n * second)
        watch.answer(START + n * second + timedelta(milliseconds=500), n, p95=10.0)
    outputs = watch.tick(START + 3 * second)
    [summary], [ended] = emitted(outputs, WatchSummary), emitted(outputs, WatchEnded)
    assert summary.checks == 3 and ended.checks == 3 and ended.breaches == 0
    assert not watch.state.watching and watch.tick(START + 4 * second) == []


def test_folding_the_watch_events_again_rebuilds_the_same_watch():
    watch = Watch()
    watch.succeed()
    watch.answer(START + timedelta(seconds=31), 0, p95=80.0)
    watch.tick(START + HOUR)
    # the shell publishes what decide() emitted; a coordinator that restarts folds the stream
    published = [o for o in watch.outputs if isinstance(o, EmitEvent)]
    for output in published:
        watch.run.add(output.data, 90, correlationid=output.correlationid)
    replayed: WatchState | None = None
    for envelope in watch.run.events:
        replayed, _ = decide(replayed, envelope)
    assert (replayed.checks_done, replayed.breaches, replayed.next_check_at) == (1, 1, T0 + START + HOUR)
    # check 1 was sent but not answered before the "restart": it is sent again, with the same id
    assert [c.id for c in sent(decide(replayed, Tick(T0 + START + HOUR))[1])] == ["run-w/watch/check/1"]
    # folding its own events twice changes nothing
    again = replayed
    for output in published:
        again, _ = decide(again, watch.run.add(output.data, 91, correlationid=output.correlationid))
    assert (again.checks_done, again.breaches, again.summaries) == (1, 1, 0)


def test_the_notifier_tells_a_breach_after_the_run_succeeded_until_the_watch_ends():
    from golive.services.notifier.moments import observe
    from golive.services.notifier.templates import DEFAULT_TEMPLATES, render

    watch = Watch()
    watch.succeed()
    breach = WatchBreached(index=0, deploy_id="dpl_new", probes=["recent"], reason="post-deploy check 1 failed: p95 80 ms")
    watch.run.add(breach, 2000)
    watch.run.add(WatchEnded(checks=1, breaches=1, reason="over"), 3000)
    view, told = None, []
    for envelope in watch.run.events:
        view, moments = observe(view, envelope)
        told += moments
    assert [m.kind for m in told] == ["run_started", "run_succeeded", "watch_breached"]
    assert not view.watching  # the notifier may forget the run now
    moment = told[-1]
    assert "watch_breached" in view.notifications.kinds_on()  # told by default
    notice = render(DEFAULT_TEMPLATES["watch_breached"], "watch_breached", moment.context, moment.event)
    assert notice.severity == "danger" and "dpl_new" in notice.text
    assert dict(notice.fields)["Reason"] == "post-deploy check 1 failed: p95 80 ms"
