"""The run guard and the provenance rule as pure functions: which work a run takes, which event is trusted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from golive.shared.envelope import new_envelope
from golive.shared.events import (
    CommandFailed,
    ProbeCompleted,
    RetryRequested,
    RunFinished,
    RunStarted,
    Verdict,
    WatchEnded,
    WatchStarted,
)
from golive.shared.provenance import event_origin_problem
from golive.shared.run_guard import work_refusal

RUN = "run-g"
AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
APPLY, REVERT, SHIFT, PROBE = (f"golive.cmd.{a}.v1" for a in ("migrator.apply", "migrator.revert", "traffic.shift",
                                                              "prober.run_set"))


def event(data, source="coordinator", run_id=RUN):
    return new_envelope(data, id=f"{run_id}/{data.short_name()}", source=f"/golive/{source}", runid=run_id, time=AT)


STARTED = event(RunStarted(plan={}, plan_name="p", deploy_id="d"))


def finished(outcome):
    return event(RunFinished(outcome=outcome, reason="r", duration_s=1))


WATCH = event(WatchStarted(deploy_id="d", period_s=60, health_every_s=10, summary_every_s=30, ends_at=AT, checks=[]))


@pytest.mark.parametrize("command", [APPLY, REVERT, SHIFT, PROBE])
def test_work_for_a_run_nobody_started_is_refused_as_unknown(command):
    refusal = work_refusal(command, RUN, [])
    assert refusal is not None and not refusal.run_known and f"no run {RUN}" in refusal.reason


@pytest.mark.parametrize("command", [APPLY, REVERT, SHIFT, PROBE])
def test_an_open_run_takes_its_work_and_its_compensations(command):
    assert work_refusal(command, RUN, [STARTED]) is None


@pytest.mark.parametrize("outcome", ["succeeded", "rolled_back", "needs_human"])
@pytest.mark.parametrize("command", [APPLY, REVERT, SHIFT])
def test_work_for_a_finished_run_is_refused_with_its_outcome(command, outcome):
    refusal = work_refusal(command, RUN, [STARTED, finished(outcome)])
    assert refusal is not None and refusal.run_known and outcome in refusal.reason


def test_golive_retry_of_a_needs_human_run_reopens_it_for_compensations_until_it_ends_again():
    retried = event(RetryRequested(requested_by="ops"))
    assert work_refusal(REVERT, RUN, [STARTED, finished("needs_human"), retried]) is None
    assert work_refusal(REVERT, RUN, [STARTED, finished("needs_human"), retried, finished("rolled_back")]) is not None


def test_the_post_deploy_watch_of_a_succeeded_run_takes_prober_work_only_while_it_lasts():
    lifecycle = [STARTED, finished("succeeded"), WATCH]
    assert work_refusal(PROBE, RUN, lifecycle) is None
    assert work_refusal(SHIFT, RUN, lifecycle) is not None  # the watch measures; it never moves traffic
    assert work_refusal(PROBE, RUN, [*lifecycle, event(WatchEnded(checks=1, breaches=0, reason="over"))]) is not None
    assert work_refusal(PROBE, RUN, [STARTED, finished("rolled_back")]) is not None


PASSED = ProbeCompleted(probe="p", count=1, errors=0, p50_ms=1, p95_ms=1, p99_ms=1, max_ms=1, duration_s=1,
                        verdicts=[Verdict(metric="p95_ms", limit=9, observed=1, passed=True)], passed=True, summary="s")


def test_an_event_is_trusted_when_subject_source_type_and_run_agree():
    assert event_origin_problem(f"golive.evt.{RUN}.prober.probe_completed", event(PASSED, "prober"), "golive") is None
    failed = CommandFailed(service="traffic", command_type="golive.cmd.traffic.shift.v1", reason="r")
    assert event_origin_problem(f"golive.evt.{RUN}.traffic.command_failed", event(failed, "traffic"), "golive") is None


@pytest.mark.parametrize("subject, envelope, why", [
    (f"golive.evt.{RUN}.migrator.probe_completed", event(PASSED, "migrator"), "belongs to prober, not to migrator"),
    (f"golive.evt.{RUN}.migrator.probe_completed", event(PASSED, "prober"), "source '/golive/prober'"),
    ("golive.evt.other.prober.probe_completed", event(PASSED, "prober"), "runid 'run-g' is not the run"),
    (f"golive.evt.{RUN}.prober.run_finished", event(PASSED, "prober"), "last token"),
    (f"golive.evt.{RUN}.traffic.command_failed",
     event(CommandFailed(service="prober", command_type="t", reason="r"), "traffic"), "names service 'prober'"),
    (f"golive.evt.{RUN}.x.prober.probe_completed", event(PASSED, "prober"), "not an event subject"),
    (f"other.evt.{RUN}.prober.probe_completed", event(PASSED, "prober"), "not an event subject"),
])
def test_an_event_whose_subject_source_type_or_run_disagree_is_not_trusted(subject, envelope, why):
    problem = event_origin_problem(subject, envelope, "golive")
    assert problem is not None and why in problem
