"""Taking a run over: which of its events a coordinator already handled (fold them silently) and which
nobody did yet (apply them, publishing what they decide)."""

from __future__ import annotations

from golive.services.coordinator.takeover import handled_through
from golive.shared.envelope import Envelope, new_envelope
from golive.shared.events import PhaseStarted

COORDINATOR = "/golive/coordinator"


def event(id: str, source: str, cause: str | None) -> Envelope:
    # the payload does not matter here: only who published the event and what caused it
    return new_envelope(PhaseStarted(phase="migrate", step="migrate", detail=""), id=id, source=source, runid="r",
                        causationid=cause)


STARTED = event("r.start/run_started", COORDINATOR, "r.start")  # recorded by the start command's handler


def test_a_run_nobody_decided_anything_for_is_handled_through_nothing():
    assert handled_through([STARTED], COORDINATOR) == -1


def test_the_cause_of_the_last_decision_and_everything_before_it_were_handled():
    history = [STARTED, event("r/step/0", COORDINATOR, STARTED.id), event("r.0/applied", "/golive/migrator", "r.0"),
               event("r/step/1", COORDINATOR, "r.0/applied"), event("r.1/done", "/golive/prober", "r.1")]
    assert handled_through(history, COORDINATOR) == 2  # the migrator's answer; the prober's is nobody's yet


def test_events_after_the_cause_that_arrived_before_its_decisions_are_not_counted_handled():
    answer = event("r.0/applied", "/golive/migrator", "r.0")
    progress = event("r/progress", "/golive/migrator", "r.0")
    history = [STARTED, answer, progress, event("r/step/1", COORDINATOR, answer.id)]
    assert handled_through(history, COORDINATOR) == 1


def test_a_decision_of_the_clock_was_handled_up_to_the_event_before_it():
    history = [STARTED, event("r/step/0", COORDINATOR, STARTED.id), event("r/timeout/r.0", COORDINATOR, None)]
    assert handled_through(history, COORDINATOR) == 1  # the timeout itself still has to be applied


def test_operator_commands_recorded_by_the_coordinator_are_inputs_not_decisions():
    abort = event("r.abort.x/abort_requested", COORDINATOR, "r.abort.x")
    history = [STARTED, event("r/step/0", COORDINATOR, STARTED.id), abort]
    assert handled_through(history, COORDINATOR) == 0
