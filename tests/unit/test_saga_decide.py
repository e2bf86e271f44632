"""The go-live saga's pure core: decide(state, input) -> (state, outputs), driven without NATS or a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from golive.services.coordinator.saga import SendCommand, Tick, decide
from golive.shared.commands import (
    AbortRun,
    ApplyMigrations,
    RevertMigrations,
    RollbackTraffic,
    RunProbe,
    RunProbes,
    ShiftTraffic,
    TakeTrafficTarget,
)
from golive.shared.envelope import new_envelope
from golive.shared.events import (
    CommandFailed,
    CompensationStarted,
    PhaseStarted,
    StageJudged,
    StepFailed,
    StepTimedOut,
    TrafficShifted,
)
from tests.unit.saga_run import (
    STEP_TIMEOUT,
    T0,
    Run,
    abort,
    approve,
    commands,
    events,
    failure,
    finished,
    hold_result,
    plan_from,
    probe_result,
    started_run,
    stray_commands,
    success_answer,
    work_commands,
)

RUNBOOK_ORDER = [
    "migrate",
    "smoke:recent",
    "stage1:shift:10",
    "stage1:hold",
    "stage2:shift:100",
    "stage2:hold",
]


def test_stray_commands_finds_a_command_to_another_service():
    """The check below can fail: a coordinator command among the outputs is found."""
    stray = SendCommand("x", AbortRun(reason="r", requested_by="me"))
    assert stray_commands([stray]) == [stray.data]


# --- starting -----------------------------------------------------------------------------------


def test_run_start_starts_the_migrate_phase_and_leaves_the_announcement_to_the_notifier():
    run = Run()

    outputs = run.start()

    assert [type(o.data) for o in outputs] == [PhaseStarted, ApplyMigrations]
    phase, migrate = (o.data for o in outputs)
    assert (phase.phase, phase.step) == ("migrate", "migrate")
    assert migrate.database_url_env == "DB_URL"
    assert [(s.name, s.sql) for s in migrate.statements] == [
        ("events_created", "CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)")
    ]
    assert run.state.in_flight == outputs[1].id
    assert run.state.deadline == T0 + STEP_TIMEOUT
    assert run.state.outcome is None


def test_duplicate_run_started_changes_nothing():
    run = started_run()
    before = run.state

    outputs = run.start()

    assert outputs == []
    assert run.state is before


def test_answers_before_the_run_started_are_ignored():
    state, outputs = decide(None, new_envelope(failure("boom"), id="e1", source="golive.test", runid="run-1",
                                               correlationid="run-1.0.migrate", time=T0))

    assert state is None
    assert outputs == []


def test_the_saga_sends_no_notifications_its_events_carry_what_the_notifier_needs():
    run = started_run()

    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))
    while not run.state.finished:
        run.succeed()

    assert stray_commands(run.outputs) == []
    (step_failed,) = [e for e in events(run.outputs) if isinstance(e, StepFailed)]
    assert "p95 512.00 > 400" in step_failed.reason  # the rollback message's reason, with its numbers
    assert finished(run.outputs).outcome == "rolled_back"


# --- moving forward -----------------------------------------------------------------------------


def test_each_success_advances_to_the_next_step_in_runbook_order():
    run = started_run()

    while not run.state.finished:
        run.succeed()

    phases = [e for e in events(run.outputs) if isinstance(e, PhaseStarted)]
    assert [p.step for p in phases] == RUNBOOK_ORDER
    assert [p.phase for p in phases] == ["migrate", "smoke", "canary", "canary", "canary", "canary"]
    sent = work_commands(run.outputs)
    assert [type(c) for c in sent] == [TakeTrafficTarget, ApplyMigrations, RunProbe, ShiftTraffic, RunProbes,
                                       ShiftTraffic, RunProbes]
    smoke, shift10, hold10, shift100, hold100 = sent[2:]
    [check10], [check100] = hold10.probes, hold100.probes  # one check each, no guards
    assert (shift10.weight, shift100.weight) == (10, 100)
    assert (shift10.canary, shift10.stable) == ("deploy-new", "deploy-old")
    assert smoke.duration_s == 5.0
    assert smoke.thresholds.p95_ms == 20
    assert check10.duration_s == 30.0  # no duration of its own: the stage's hold
    assert check10.thresholds.error_rate_pct == 1
    assert check100.duration_s == 10.0
    assert check10.label == hold10.label == "stage 1 (10%)"
    assert (hold10.duration_s, hold100.duration_s) == (30.0, 10.0)
    assert check10.window_s is None  # no analysis: a stage is judged on its totals


def test_whole_success_path_ends_succeeded_with_a_success_notification():
    run = started_run()

    while not run.state.finished:
        last = run.succeed()

    assert run.state.outcome == "succeeded"
    result = finished(last)
    assert result.outcome == "succeeded"
    assert result.left_to_undo == []
    assert result.duration_s == (run.clock - T0).total_seconds() == len(RUNBOOK_ORDER)
    assert stray_commands(run.outputs) == []
    assert not any(isinstance(c, (RollbackTraffic, RevertMigrations)) for c in commands(run.outputs))
    assert not any(isinstance(e, (StepFailed, CompensationStarted)) for e in events(run.outputs))


def test_migration_results_are_kept_as_run_notes():
    run = started_run()

    run.succeed()

    assert run.state.notes == ("events_created: built",)


def test_plan_without_migrations_starts_with_the_smoke_checks():
    plan = plan_from(**{
        "migrations:\n  statements:\n    - name: events_created\n"
        "      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)\n": "",
    })
    run = Run(plan=plan)

    outputs = run.start()

    assert [type(c) for c in work_commands(outputs)] == [RunProbe]
    assert run.current_step == "smoke:recent"


# --- failing and compensating -------------------------------------------------------------------


def test_stage_rolls_back_traffic_before_reverting_indexes_after_a_failing_probe():
    run = started_run()
    run.advance_to("stage1:hold")

    failed = run.answer(hold_result(passed=False))

    assert [type(o.data) for o in failed] == [StepFailed, StageJudged, CompensationStarted, RollbackTraffic]
    step_failed, _stage_failed, undo_traffic, rollback = (o.data for o in failed)
    assert step_failed.step == "stage1:hold"
    assert "p95 512.00 > 400 over 300 requests" in step_failed.reason
    assert undo_traffic.undoes == "stage1:shift:10"
    assert (rollback.canary, rollback.to) == ("deploy-new", "deploy-old")
    assert run.state.compensating

    reverting = run.succeed()

    assert [type(o.data) for o in reverting] == [CompensationStarted, RevertMigrations]
    assert reverting[0].data.undoes == "migrate"
    assert [s.name for s in reverting[1].data.statements] == ["events_created"]

    done = run.succeed()

    assert run.state.outcome == "rolled_back"
    result = finished(done)
    assert result.outcome == "rolled_back"
    assert "p95 512.00 > 400" in result.reason
    assert stray_commands(run.outputs) == []


def test_failed_command_rolls_back_with_the_services_reason():
    run = started_run()
    run.advance_to("stage2:shift:100")

    failed = run.answer(failure("envoy admin API unreachable"))

    step_failed = events(failed)[0]
    assert isinstance(step_failed, StepFailed)
    assert step_failed.step == "stage2:shift:100"
    assert "envoy admin API unreachable" in step_failed.reason
    while not run.state.finished:
        run.succeed()
    undone = [e.undoes for e in events(run.outputs) if isinstance(e, CompensationStarted)]
    assert undone == ["stage1:shift:10", "migrate"]  # only the first shift registers the traffic rollback
    assert run.state.outcome == "rolled_back"


def test_failure_before_any_traffic_shift_only_reverts_the_indexes():
    run = started_run()
    run.advance_to("smoke:recent")

    failed = run.answer(probe_result("recent", passed=False, summary="p95 25.00 > 20 over 300 requests"))

    assert [type(c) for c in work_commands(failed)] == [RevertMigrations]
    assert not any(isinstance(c, RollbackTraffic) for c in commands(run.outputs))


def test_plan_without_drop_indexes_has_no_index_revert():
    run = started_run(plan=plan_from(**{"drop_indexes: true": "drop_indexes: false"}))
    run.advance_to("stage1:hold")

    failed = run.answer(hold_result(passed=False))
    assert [type(c) for c in work_commands(failed)] == [RollbackTraffic]
    done = run.succeed()

    assert finished(done).outcome == "rolled_back"
    assert not any(isinstance(c, RevertMigrations) for c in commands(run.outputs))


def test_failure_with_nothing_to_undo_ends_rolled_back_at_once():
    run = started_run(plan=plan_from(**{"drop_indexes: true": "drop_indexes: false"}))

    failed = run.answer(failure("lock timeout on events"))

    assert work_commands(failed) == []
    assert finished(failed).outcome == "rolled_back"
    assert "lock timeout on events" in finished(failed).reason


def test_failing_compensation_ends_needs_human_naming_what_is_left_to_undo():
    run = started_run()
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))

    outputs = run.answer(failure("envoy admin API unreachable"))

    assert run.state.outcome == "needs_human"
    result = finished(outputs)
    assert result.outcome == "needs_human"
    assert result.left_to_undo == ["stage1:shift:10", "migrate"]
    assert "p95 512.00 > 400" in result.reason
    assert "envoy admin API unreachable" in result.reason
    assert work_commands(outputs) == []  # the index revert is not attempted behind a failed traffic rollback
    assert stray_commands(run.outputs) == []


def test_finished_run_ignores_answers_and_ticks():
    run = started_run()
    run.answer(failure("lock timeout"))
    run.answer(failure("permission denied for DROP INDEX"))
    assert run.state.outcome == "needs_human"
    after = run.state

    assert run.answer(success_answer(run.commands["run-1.0.migrate"]), correlationid="run-1.0.migrate") == []
    assert run.tick(run.clock + timedelta(days=1)) == []
    assert run.state is after


# --- time ---------------------------------------------------------------------------------------


def test_tick_before_the_deadline_changes_nothing():
    run = started_run()
    before = run.state

    outputs = run.tick(T0 + STEP_TIMEOUT - timedelta(milliseconds=1))

    assert outputs == []
    assert run.state is before


def test_tick_past_the_deadline_only_reports_the_timeout_as_an_event_for_the_awaited_command():
    run = started_run()
    before = run.state

    state, outputs = decide(run.state, Tick(T0 + STEP_TIMEOUT))

    assert state is before
    [said] = outputs
    assert isinstance(said.data, StepTimedOut) and said.data.step == "migrate"
    assert said.correlationid == "run-1.0.migrate"


def test_replaying_a_run_that_timed_out_rebuilds_the_same_state():
    run = started_run()
    run.tick(T0 + STEP_TIMEOUT)
    run.succeed()  # the revert's answer
    replayed = None
    for item in run.inputs:
        if not isinstance(item, Tick):  # a replay reads the event log; ticks are not in it
            replayed, _ = decide(replayed, item)
    assert run.state.outcome == "rolled_back"
    assert replayed == run.state


def test_tick_past_the_deadline_fails_the_step_as_timed_out_and_undoes_that_step_too():
    run = started_run()  # migrate sent at T0; its revert is registered before it was sent

    outputs = run.tick(T0 + STEP_TIMEOUT)

    assert [type(o.data) for o in outputs] == [StepFailed, CompensationStarted, RevertMigrations]
    step_failed, undo, _ = (o.data for o in outputs)
    assert step_failed.step == "migrate"
    assert "migrate timed out" in step_failed.reason
    assert undo.undoes == "migrate"
    assert run.state.deadline == T0 + 2 * STEP_TIMEOUT


def test_timed_out_traffic_shift_is_rolled_back():
    run = started_run()
    run.advance_to("stage1:shift:10")
    sent_at = run.clock

    outputs = run.tick(sent_at + STEP_TIMEOUT)

    assert "stage1:shift:10 timed out" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_probe_deadline_allows_for_the_probe_duration_on_top_of_the_step_timeout():
    run = started_run()
    run.advance_to("smoke:recent")  # a 5s probe
    sent_at = run.clock

    assert run.tick(sent_at + STEP_TIMEOUT + timedelta(seconds=4)) == []
    outputs = run.tick(sent_at + STEP_TIMEOUT + timedelta(seconds=5))

    assert isinstance(events(outputs)[0], StepFailed)


def test_late_answer_to_a_timed_out_step_is_ignored():
    run = started_run()
    run.tick(T0 + STEP_TIMEOUT)
    compensating = run.state

    outputs = run.answer(success_answer(run.commands["run-1.0.migrate"]), correlationid="run-1.0.migrate")

    assert outputs == []
    assert run.state is compensating


def test_compensation_that_times_out_ends_needs_human():
    run = started_run()
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))
    rollback_sent = run.clock

    outputs = run.tick(rollback_sent + STEP_TIMEOUT)

    result = finished(outputs)
    assert result.outcome == "needs_human"
    assert "undoing stage1:shift:10 timed out" in result.reason
    assert result.left_to_undo == ["stage1:shift:10", "migrate"]


# --- which answers count ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "correlationid",
    [
        pytest.param("run-2.0.migrate", id="another run's command"),
        pytest.param("run-1.undo.0.migrate", id="a command not sent yet"),
        pytest.param(None, id="no correlation id"),
    ],
)
def test_answers_to_commands_not_awaited_are_ignored(correlationid):
    run = started_run()
    before = run.state

    run.clock += timedelta(seconds=1)
    outputs = run.feed(new_envelope(failure("boom"), id="foreign", source="golive.test", runid="run-1",
                                    correlationid=correlationid, time=run.clock))

    assert outputs == []
    assert run.state is before


def test_stale_answer_to_an_earlier_step_is_ignored():
    run = started_run()
    run.succeed()  # migrate done, smoke in flight
    before = run.state

    outputs = run.answer(failure("duplicate delivery"), correlationid="run-1.0.migrate")

    assert outputs == []
    assert run.state is before


# --- determinism --------------------------------------------------------------------------------


def rolled_back_run(run_id: str = "run-1") -> Run:
    run = started_run(run_id=run_id)
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))
    while not run.state.finished:
        run.succeed()
    return run


def test_replaying_the_same_inputs_rebuilds_the_same_state_and_outputs():
    original = rolled_back_run()

    state, outputs = None, []
    for item in original.inputs:
        state, more = decide(state, item)
        outputs += more

    assert state == original.state
    assert outputs == original.outputs


def test_replaying_a_prefix_resumes_with_the_same_deadline():
    original = started_run()
    original.advance_to("stage1:hold")

    state = None
    for item in original.inputs:
        state, _ = decide(state, item)

    assert state.in_flight == original.state.in_flight
    assert state.deadline == original.state.deadline == original.clock + timedelta(seconds=30) + STEP_TIMEOUT


def test_command_and_event_ids_depend_only_on_the_run_and_its_inputs():
    first, second = rolled_back_run(), rolled_back_run()
    other = rolled_back_run(run_id="run-2")

    ids = [o.id for o in first.outputs]
    assert ids == [o.id for o in second.outputs]
    assert all("run-1" in i for i in ids)
    assert not set(ids) & {o.id for o in other.outputs}


@pytest.mark.parametrize("journey", ["succeeded", "rolled_back"])
def test_every_output_of_a_run_has_its_own_id(journey):
    # ids are the Nats-Msg-Id: two outputs sharing one would be deduplicated into one
    if journey == "rolled_back":
        run = rolled_back_run()
    else:
        run = started_run()
        while not run.state.finished:
            run.succeed()

    ids = [o.id for o in run.outputs]
    assert len(ids) == len(set(ids))
    assert finished(run.outputs).outcome == journey


def test_shift_whose_weight_reads_back_wrong_fails_the_stage():
    run = started_run()
    run.advance_to("stage1:shift:10")

    outputs = run.answer(TrafficShifted(provider="dry-run", canary="deploy-new", weight=10, verified_weight=0))

    assert "reads back 0%, expected 10%" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_each_shift_expects_the_weight_of_the_stage_before_it():
    run = started_run()  # the target is taken with the canary read back at 0%
    while not run.state.finished:
        run.succeed()
    shifts = [c for c in commands(run.outputs) if isinstance(c, ShiftTraffic)]

    assert [(c.weight, c.expected_previous_weight) for c in shifts] == [(10, 0), (100, 10)]


def test_traffic_drift_fails_the_stage_and_rolls_traffic_back():
    from golive.shared.events import TrafficDrift

    run = started_run()
    run.advance_to("stage2:shift:100")

    outputs = run.answer(TrafficDrift(provider="envoy", canary="deploy-new", requested_weight=100,
                                      expected_weight=10, observed_weight=30))

    reason = events(outputs)[0].reason
    assert "stage2:shift:100 refused" in reason and "30%" in reason and "10%" in reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


# --- migrator progress is not an answer ----------------------------------------------------------


def test_migrator_progress_correlated_to_the_migrate_command_is_not_taken_as_its_answer():
    from golive.shared.events import MigrationProgress, OldTransaction, OldTransactionsFound

    run = started_run()

    outputs = run.answer(MigrationProgress(name="events_created", index="idx_events_created", status="waiting",
                                           phase="waiting for old snapshots", blocking_pid=42))
    outputs += run.answer(OldTransactionsFound(threshold_s=60, policy="wait", transactions=[
        OldTransaction(pid=42, age_s=90.0, state="idle in transaction", query="SELECT 1")]))

    assert outputs == [] and run.current_step == "migrate"
    run.succeed()
    assert run.current_step == "smoke:recent"


def test_migrate_step_carries_the_plans_waivers_preflight_and_retry_policy():
    plan = plan_from(**{
        "      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)\n":
            "      sql: CREATE INDEX CONCURRENTLY idx_events_created ON events(created_at)\n"
            "      waive: [{rule: ban-if-not-exists, reason: checked by hand}]\n"
            "      reapply: true\n"
            "  preflight: {old_transaction_s: 30, on_old_transactions: fail}\n"
            "  retry: {max_attempts: 5, backoff_s: 2}\n",
    })
    run = started_run(plan=plan)

    apply = run.awaited
    assert isinstance(apply, ApplyMigrations)
    assert apply.statements[0].waive[0].rule == "ban-if-not-exists" and apply.statements[0].reapply
    assert (apply.preflight.old_transaction_s, apply.preflight.on_old_transactions) == (30, "fail")
    assert (apply.retry.max_attempts, apply.retry.backoff_s) == (5, 2)


def test_awaited_command_is_the_one_sent_for_the_step_in_flight_so_a_restart_can_send_it_again():
    from golive.services.coordinator.saga import awaited_command

    run = started_run()
    run.advance_to("stage1:shift:10")
    sent = [o for o in run.outputs if isinstance(o, SendCommand) and o.id == run.state.in_flight]

    again = awaited_command(run.state)

    assert again == sent[0]


def test_awaited_command_during_compensation_is_the_compensation_and_none_once_finished():
    from golive.services.coordinator.saga import awaited_command

    run = started_run()
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))
    assert isinstance(awaited_command(run.state).data, RollbackTraffic)
    assert awaited_command(run.state).id == run.state.in_flight
    while not run.state.finished:
        run.succeed()
    assert awaited_command(run.state) is None


def test_abort_fails_the_step_in_flight_at_once_and_compensates_newest_first():
    run = started_run()
    run.advance_to("stage1:hold")

    outputs = abort(run)

    failed = events(outputs)[0]
    assert isinstance(failed, StepFailed) and failed.reason == "aborted by maksim: error budget burning"
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_abort_during_compensation_or_after_the_end_changes_nothing():
    run = started_run()
    run.advance_to("stage1:hold")
    abort(run)
    compensating = run.state
    assert abort(run, reason="again") == [] and run.state is compensating
    while not run.state.finished:
        run.succeed()
    finished_state = run.state
    assert abort(run) == [] and run.state is finished_state


# --- retries ------------------------------------------------------------------------------------


def retrying_run() -> Run:
    return started_run(plan=plan_from(**{"attempts: 1  # one try unless a test says otherwise": "attempts: 3\n  backoff: 2s"}))


def transient(reason: str = "connection reset by the provider") -> CommandFailed:
    return CommandFailed(service="traffic", command_type="golive.cmd.traffic.shift.v1", reason=reason, failure="transient")


def test_transient_failure_is_tried_again_after_the_backoff_under_a_new_command_id():
    from golive.shared.events import StepRetrying

    run = retrying_run()
    run.advance_to("stage1:shift:10")
    first_id = run.state.in_flight

    said = run.answer(transient())
    assert [type(e) for e in events(said)] == [StepRetrying] and commands(said) == []
    assert run.tick(run.clock + timedelta(seconds=1)) == []  # still backing off
    again = run.tick(run.clock + timedelta(seconds=1))

    [command] = commands(again)
    assert isinstance(command, ShiftTraffic) and command.weight == 10
    assert run.state.in_flight == f"{first_id}.try2" != first_id
    run.succeed()
    assert run.current_step == "stage1:hold"


def test_backoff_doubles_and_the_last_transient_failure_fails_the_step():
    from golive.shared.events import StepRetrying

    run = retrying_run()
    run.advance_to("stage1:shift:10")
    run.answer(transient())
    first = [e for e in events(run.outputs) if isinstance(e, StepRetrying)][-1]
    run.tick(first.retry_at)
    run.answer(transient())
    second = [e for e in events(run.outputs) if isinstance(e, StepRetrying)][-1]
    assert (second.retry_at - run.clock).total_seconds() == 4  # 2 s, then 4 s
    run.tick(second.retry_at)

    outputs = run.answer(transient("still resetting"))

    assert isinstance(events(outputs)[0], StepFailed) and "still resetting" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_fatal_and_invalid_failures_are_not_retried():
    run = retrying_run()
    run.advance_to("stage1:shift:10")
    outputs = run.answer(failure("deployment dpl_x does not exist"))
    assert isinstance(events(outputs)[0], StepFailed)


def test_a_failing_compensation_is_retried_before_the_run_needs_a_human():
    from golive.shared.events import StepRetrying

    run = retrying_run()
    run.advance_to("stage1:hold")
    run.answer(hold_result(passed=False))
    for _ in range(2):
        run.answer(failure("envoy admin API unreachable"))
        retry = [e for e in events(run.outputs) if isinstance(e, StepRetrying)][-1]
        assert retry.step == "undo:stage1:shift:10"
        run.tick(retry.retry_at)
        assert isinstance(run.awaited, RollbackTraffic)
    outputs = run.answer(failure("envoy admin API unreachable"))
    assert finished(outputs).outcome == "needs_human"


def test_replaying_a_run_with_retries_rebuilds_the_same_state():
    run = retrying_run()
    run.advance_to("stage1:shift:10")
    run.answer(transient())
    run.tick(run.clock + timedelta(seconds=2))
    run.succeed()
    replayed = None
    for item in run.inputs:
        if not isinstance(item, Tick):
            replayed, _ = decide(replayed, item)
    assert replayed == run.state


# --- gates --------------------------------------------------------------------------------------


def gated_run() -> Run:
    plan = plan_from(**{"    - weight: 100\n      hold: 60s": "    - weight: 100\n      hold: 60s\n      approval: true"})
    return started_run(plan=plan)


def test_gated_stage_waits_for_approval_without_sending_anything():
    run = gated_run()
    run.advance_to("stage1:hold")

    outputs = run.succeed()

    assert run.current_step == "stage2:gate"
    assert commands(outputs) == []
    (gate,) = [e for e in events(outputs) if isinstance(e, PhaseStarted)]
    assert "golive approve run-1 --stage 2" in gate.detail


def test_approval_of_the_waiting_stage_opens_the_gate_and_others_do_not():
    run = gated_run()
    run.advance_to("stage2:gate")

    assert approve(run, stage=1) == [] and run.current_step == "stage2:gate"
    outputs = approve(run, stage=2)

    assert run.current_step == "stage2:shift:100"
    assert [c.weight for c in work_commands(outputs)] == [100]
    assert approve(run, stage=2) == []  # a second approval changes nothing


def test_gate_without_approval_rolls_back_when_the_approval_timeout_passes():
    run = gated_run()
    run.advance_to("stage2:gate")
    waiting_since = run.clock

    assert run.tick(waiting_since + timedelta(minutes=59)) == []
    outputs = run.tick(waiting_since + timedelta(hours=1))

    assert "stage2:gate timed out" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_approval_never_opens_a_gate_after_an_abort():
    run = gated_run()
    run.advance_to("stage2:gate")
    abort(run)
    assert approve(run, stage=2) == []
    assert not any(isinstance(c, ShiftTraffic) and c.weight == 100 for c in run.commands.values())


# --- the maintenance window ---------------------------------------------------------------------


def windowed_run(at_end: str = "rollback") -> Run:
    plan = plan_from(**{"timeouts:\n  step: 60s": f"timeouts:\n  step: 60s\nwindow:\n  rollback: 10m\n  at_end: {at_end}"})
    run = Run(plan=plan)
    run.start(take=False, window_ends_at=T0 + timedelta(minutes=11))
    return run


def test_run_rolls_back_when_only_the_rollback_time_is_left_in_the_window():
    from golive.shared.events import WindowClosing

    run = windowed_run()
    run.advance_to("stage1:hold")
    assert decide(run.state, Tick(T0 + timedelta(seconds=59)))[1] == []  # the window ends in 10 min 1 s

    _, said = decide(run.state, Tick(T0 + timedelta(minutes=1)))
    [closing] = said
    assert isinstance(closing.data, WindowClosing) and closing.data.ends_at == T0 + timedelta(minutes=11)
    outputs = run.feed(new_envelope(closing.data, id=closing.id, source="/golive/coordinator", runid="run-1",
                                    time=T0 + timedelta(minutes=1)))

    assert "maintenance window closes" in events(outputs)[0].reason
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_window_policy_continue_lets_the_run_go_on():
    run = windowed_run(at_end="continue")
    run.advance_to("stage1:hold")
    assert decide(run.state, Tick(T0 + timedelta(minutes=1)))[1] == []


def test_a_correlated_event_that_is_no_answer_leaves_the_step_waiting():
    from golive.shared.events import NotificationSent

    run = started_run()
    run.advance_to("stage1:shift:10")
    waiting = run.state

    outputs = run.answer(NotificationSent(kind="stage_passed", sink="slack", attempts=1))

    assert outputs == [] and run.state is waiting


# --- operator controls: pause, continue, retry ----------------------------------------------------


def control(run, data, after: timedelta = timedelta(seconds=1)):
    """An operator's request as the coordinator records it (PauseRequested, ContinueRequested, RetryRequested)."""
    run.clock += after
    return run.feed(new_envelope(data, id=f"{run.run_id}/control/{len(run.inputs)}", source="/golive/coordinator",
                                 runid=run.run_id, correlationid=f"{run.run_id}.control.x", time=run.clock))


def pause(run, by="maksim", reason="checking the dashboards", after: timedelta = timedelta(seconds=1)):
    from golive.shared.events import PauseRequested

    return control(run, PauseRequested(reason=reason, requested_by=by), after)


def resume(run, after: timedelta = timedelta(seconds=1)):
    from golive.shared.events import ContinueRequested

    return control(run, ContinueRequested(requested_by="maksim"), after)


def retry(run, after: timedelta = timedelta(seconds=1)):
    from golive.shared.events import RetryRequested

    return control(run, RetryRequested(requested_by="maksim", reason="envoy admin is back"), after)


def test_paused_run_keeps_a_passing_result_and_sends_the_next_step_only_on_continue():
    run = started_run()
    run.advance_to("stage1:shift:10")
    assert pause(run) == []
    assert run.state.paused_by == "maksim: checking the dashboards"

    held = run.succeed()  # the shift in flight finishes while paused

    assert held == [] and run.state.in_flight is None
    assert run.current_step == "stage1:shift:10"  # it holds where it is
    assert run.tick(run.clock + timedelta(hours=1)) == []  # however long the pause lasts
    released = resume(run)
    assert [type(e) for e in events(released)] == [PhaseStarted]
    assert events(released)[0].step == run.current_step != "stage1:shift:10"
    assert len(work_commands(released)) == 1 and run.state.paused_by is None
    assert run.state.deadline > run.clock  # the next step's deadline counts from the continue


def test_paused_step_does_not_time_out_and_continue_gives_back_the_time_it_was_paused():
    run = started_run()
    run.advance_to("stage1:shift:10")
    deadline = run.state.deadline
    pause(run)
    paused_at = run.clock
    assert run.tick(deadline + timedelta(minutes=10)) == []  # past its deadline, but paused

    resume(run, after=timedelta(minutes=10))

    assert run.state.deadline == deadline + (run.clock - paused_at)
    assert run.current_step == "stage1:shift:10" and run.state.in_flight is not None
    run.succeed()
    assert run.current_step != "stage1:shift:10"  # not paused any more: it moves on by itself


def test_a_failure_or_an_abort_while_paused_still_rolls_back():
    run = started_run()
    run.advance_to("stage1:shift:10")
    pause(run)
    failed = run.answer(failure("deployment dpl_x does not exist"))
    assert isinstance(events(failed)[0], StepFailed) and [type(c) for c in work_commands(failed)] == [RollbackTraffic]

    held = started_run(run_id="run-2")
    held.advance_to("stage1:shift:10")
    pause(held)
    held.succeed()
    aborted = abort(held)
    assert isinstance(events(aborted)[0], StepFailed) and [type(c) for c in work_commands(aborted)] == [RollbackTraffic]
    while not held.state.finished:  # the compensations' own timeouts and answers are not held by the pause
        held.succeed()
    assert held.state.outcome == "rolled_back"


def at_the_first_shift() -> Run:
    run = started_run()
    run.advance_to("stage1:shift:10")
    return run


def until_finished(run: Run) -> Run:
    while not run.state.finished:
        run.succeed()
    return run


def test_pause_while_compensating_or_finished_and_continue_of_a_run_not_paused_change_nothing():
    run = at_the_first_shift()
    before = run.state
    assert resume(run) == [] and run.state is before
    run.answer(failure("deployment dpl_x does not exist"))
    compensating = run.state
    assert pause(run) == [] and run.state is compensating
    finished_state = until_finished(run).state
    assert pause(run) == [] and run.state is finished_state


def needs_human_run() -> Run:
    """A run whose traffic rollback failed: left to undo stage1:shift:10, then migrate."""
    run = at_the_first_shift()
    run.answer(failure("deployment dpl_x does not exist"))
    outputs = run.answer(failure("envoy admin API unreachable"))
    assert finished(outputs).left_to_undo == ["stage1:shift:10", "migrate"]
    return run


def test_retry_of_a_needs_human_run_undoes_what_is_left_from_the_first_not_done_and_ends_rolled_back():
    run = needs_human_run()
    first_try = {o.id for o in run.outputs}

    outputs = retry(run)

    assert [type(e) for e in events(outputs)] == [CompensationStarted]
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]
    assert run.state.outcome is None and run.state.compensating
    run.succeed()
    assert isinstance(run.awaited, RevertMigrations)
    done = run.succeed()
    assert finished(done).outcome == "rolled_back" and "retried by maksim" in finished(done).reason
    retried_ids = {o.id for o in run.outputs} - first_try
    assert len(retried_ids) == 5  # new command and event ids: JetStream would drop a re-send of the first ones


def test_retry_that_fails_again_ends_needs_human_again_and_can_be_retried_once_more():
    run = needs_human_run()
    retry(run)
    again = run.answer(failure("envoy admin API still unreachable"))
    assert finished(again).outcome == "needs_human" and "still unreachable" in finished(again).reason
    retry(run)
    assert run.state.in_flight.endswith(".retry2")


def test_retry_of_a_run_that_does_not_need_a_human_changes_nothing():
    run = at_the_first_shift()
    running = run.state
    assert retry(run) == [] and run.state is running
    run.answer(failure("deployment dpl_x does not exist"))
    rolled_back = until_finished(run).state
    assert retry(run) == [] and run.state is rolled_back


def test_replaying_a_run_with_pause_continue_and_retry_rebuilds_the_same_state():
    run = started_run()
    run.advance_to("stage1:shift:10")
    pause(run)
    run.succeed()
    resume(run)
    run.answer(failure("deployment dpl_x does not exist"))
    run.answer(failure("envoy admin API unreachable"))
    retry(run)
    replayed = None
    for item in run.inputs:
        if not isinstance(item, Tick):
            replayed, _ = decide(replayed, item)
    assert replayed == run.state
