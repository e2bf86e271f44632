"""Slowness is never silence: a stage hold that ends with too little evidence (a check or the guard without a
conclusive window, more inconclusive windows than conclusive ones, or inconclusive totals) pauses the run
(``analysis.inconclusive: pause``, the default), fails the stage (``fail``) or holds once more (``extend``)."""

from __future__ import annotations

from golive.services.coordinator.saga import decide
from golive.shared.commands import RollbackTraffic, RunProbes, ShiftTraffic
from golive.shared.events import ContinueRequested, PauseRequested, PhaseStarted, ProbesCompleted, StageJudged, StepFailed
from tests.unit.runbook_hold import at_hold, guard_inconclusive, judged, window_of
from tests.unit.saga_run import Run, abort, commands, events, hold_result, work_commands

ANALYSIS = "consecutive_failure_limit: 2}"


def policy(name: str) -> dict[str, str]:
    """The runbook plan's analysis with ``inconclusive: name``."""
    return {ANALYSIS: f"consecutive_failure_limit: 2, inconclusive: {name}}}"}


def hold_ends(run: Run, answer=None, **windows: int):
    """The hold in flight answers with its totals (all passed unless ``answer`` says otherwise); ``windows``: how
    many windows the prober says it sent of each probe named (as ProbeCompleted.windows)."""
    answer = answer or hold_result(passed=True, probes=["recent", "app", "db"], label="stage 1 (10%)")
    results = [r.model_copy(update={"windows": windows.get(r.probe, r.windows)}) for r in answer.results]
    return run.answer(answer.model_copy(update={"results": results}))


def thin(run: Run, n: int = 3, first: int = 0) -> None:
    """``n`` windows of recent too thin to judge (5 requests < min_samples 20)."""
    for index in range(first, first + n):
        assert judged(window_of(run, index, count=5))[0].verdict == "inconclusive"


def paused_by_golive(outputs) -> PauseRequested:
    [paused] = [e for e in events(outputs) if isinstance(e, PauseRequested)]
    assert paused.requested_by == "golive"
    return paused


def paused_on_thin_windows() -> Run:
    """A run golive paused at the end of stage 1's hold (the default policy): its 3 windows were too thin to judge."""
    run = at_hold()
    thin(run)
    paused_by_golive(hold_ends(run))
    return run


def go_on(run: Run):
    return run.operator(ContinueRequested(requested_by="maksim", reason="slow but fine: checked the dashboards"))


def test_by_default_a_hold_with_no_conclusive_window_pauses_the_run_saying_why_with_the_counts():
    run = at_hold()
    thin(run)

    outputs = hold_ends(run)

    paused = paused_by_golive(outputs)
    assert paused.reason.startswith("stage 1 (10%) inconclusive: 3 inconclusive windows; "
                                    "recent 3 of 3 windows inconclusive (last: 5 requests < min_samples 20)")
    assert commands(outputs) == [] and run.state.in_flight is None  # nothing moves on
    assert not any(isinstance(e, StageJudged) for e in events(outputs))  # not passed, not failed: waiting
    assert run.state.paused_by == f"golive: {paused.reason}"
    # the pause folded back (as the shell does with its own events) changes nothing
    before = run.state
    assert run.operator(paused) == [] and run.state == before


def test_continue_lets_an_inconclusive_stage_pass_naming_who_and_the_counts():
    run = paused_on_thin_windows()

    outputs = go_on(run)

    [stage] = [e for e in events(outputs) if isinstance(e, StageJudged)]
    assert (stage.stage, stage.verdict, stage.windows, stage.inconclusive_windows) == (1, "pass", 3, 3)
    assert stage.reason.startswith("stage1:hold inconclusive, continued by maksim: stage 1 (10%) inconclusive: ")
    assert [type(c) for c in work_commands(outputs)] == [ShiftTraffic] and run.current_step == "stage2:shift:100"


def test_abort_of_a_run_paused_on_an_inconclusive_stage_rolls_back():
    run = paused_on_thin_windows()

    outputs = abort(run)

    [stage] = [e for e in events(outputs) if isinstance(e, StageJudged)]
    assert stage.verdict == "fail" and stage.inconclusive_windows == 3
    assert [type(c) for c in work_commands(outputs)] == [RollbackTraffic]


def test_more_inconclusive_windows_than_conclusive_ones_is_too_little_evidence_fewer_is_enough():
    enough = at_hold()
    window_of(enough, 0)
    window_of(enough, 1)
    thin(enough, 1, first=2)
    assert not any(isinstance(e, PauseRequested) for e in events(hold_ends(enough)))
    assert enough.current_step == "stage2:shift:100"

    wanting = at_hold()
    window_of(wanting, 0)
    thin(wanting, 2, first=1)
    assert "recent 2 of 3 windows inconclusive" in paused_by_golive(hold_ends(wanting)).reason


def test_a_guard_that_could_not_be_read_is_no_pass_its_windows_count_toward_the_same_policy():
    run = at_hold()
    window_of(run, 0)  # the check is healthy
    for index in range(2):  # the guard never read replica lag
        [verdict] = judged(window_of(run, index, probe="db", connection_use_pct=40.0))
        assert verdict.guard and verdict.verdict == "inconclusive"

    paused = paused_by_golive(hold_ends(run, guard_inconclusive()))

    assert paused.reason.startswith("stage 1 (10%) inconclusive: 2 inconclusive windows; db 2 of 2 windows "
                                    "inconclusive (last: connection use 40% <= 80%, replica lag never measured)")
    assert not run.state.compensating


def check_inconclusive() -> ProbesCompleted:
    """A stage 1 hold's answer: the check recent inconclusive on its totals, app passed, the guard read nothing."""
    answer = guard_inconclusive()
    recent = answer.results[0].model_copy(update={"verdict": "inconclusive", "summary": "12 requests < min_samples 20"})
    return answer.model_copy(update={"results": [recent, *answer.results[1:]], "summary": "2 of 3 probes inconclusive"})


def test_inconclusive_totals_of_a_check_pause_by_default_and_fail_with_inconclusive_fail():
    paused = at_hold()
    reason = paused_by_golive(hold_ends(paused, check_inconclusive())).reason
    assert ("recent totals inconclusive: 12 requests < min_samples 20; db totals inconclusive: db: connection use "
            "40% <= 80%, replica lag never measured") in reason

    failing = at_hold(**policy("fail"))
    [failed] = [e for e in events(hold_ends(failing, check_inconclusive())) if isinstance(e, StepFailed)]
    assert failed.cause == "inconclusive"
    assert failed.reason.startswith("stage1:hold failed: stage 1 (10%) inconclusive: ")


def test_with_inconclusive_fail_an_unread_guard_window_is_a_failed_window():
    run = at_hold(**policy("fail"))

    window_of(run, 0, probe="db", connection_use_pct=40.0)
    outputs = window_of(run, 1, probe="db", connection_use_pct=40.0)

    [failed] = [e for e in events(outputs) if isinstance(e, StepFailed)]
    assert failed.cause == "inconclusive"
    assert failed.reason.endswith("2 consecutive failed windows of db reach consecutive_failure_limit 2")


def test_extend_holds_once_more_for_the_holds_length_and_passes_on_the_evidence_it_collects():
    run = at_hold(**policy("extend"))
    hold = run.awaited
    first_id = run.state.in_flight
    thin(run, 2)

    outputs = hold_ends(run, recent=2)

    [again] = [o for o in commands(outputs)]
    assert isinstance(again, RunProbes) and again.duration_s == hold.duration_s  # the same hold, its length again
    assert [p.model_copy(update={"first_window": 0}) for p in again.probes] == hold.probes
    assert run.state.in_flight == f"{first_id}.extended"
    [extended] = [e for e in events(outputs) if isinstance(e, PhaseStarted)]
    assert extended.detail.startswith("extended by 60s to collect evidence: stage 1 (10%) inconclusive: ")
    assert not any(isinstance(e, PauseRequested | StageJudged) for e in events(outputs))

    for index in range(2, 5):  # the extension's windows are conclusive: 3 judged against 2 not
        window_of(run, index)
    outputs = hold_ends(run)

    [stage] = [e for e in events(outputs) if isinstance(e, StageJudged)]
    assert (stage.verdict, stage.windows, stage.inconclusive_windows) == ("pass", 5, 2)
    assert run.current_step == "stage2:shift:100"


def test_an_extension_numbers_its_windows_on_from_those_its_hold_sent_so_none_is_taken_for_another():
    # the run's story keys a stage's windows by probe and index: an extension numbering from 0 again overwrote them
    run = at_hold(**policy("extend"))
    hold = run.awaited
    thin(run, 2)
    window_of(run, 0, probe="app")

    [again] = commands(hold_ends(run, recent=2, app=3, db=2))

    assert isinstance(again, RunProbes) and isinstance(hold, RunProbes)
    assert [(p.probe.name, p.first_window) for p in again.probes] == [("recent", 2), ("app", 3), ("db", 2)]
    assert [p.first_window for p in hold.probes] == [0, 0, 0]
    [verdict] = judged(window_of(run, 2))
    assert verdict.index == 2 and verdict.reason.startswith("stage 1 (10%): recent window 2 passed")
    # a window of the extension numbered as one of the hold's was judged already: it is not counted twice
    assert judged(window_of(run, 1, count=5)) == []


def test_extend_pauses_when_the_extension_is_inconclusive_too():
    run = at_hold(**policy("extend"))
    thin(run, 2)
    hold_ends(run, recent=2)
    thin(run, 2, first=2)

    paused = paused_by_golive(hold_ends(run))

    assert "recent 4 of 4 windows inconclusive" in paused.reason and "after holding 60s more" in paused.reason
    assert run.state.in_flight is None


def test_replaying_the_stream_of_a_run_golive_paused_extended_and_continued_rebuilds_the_same_state():
    # the shell folds the run's stream, the pause golive emitted included: it must land where decide() did
    run = at_hold(**policy("extend"))
    thin(run, 2)
    hold_ends(run, recent=2)
    thin(run, 2, first=2)
    hold_ends(run)
    paused = run.state
    go_on(run)

    replayed, seen_paused = None, 0
    for envelope in run.stream:
        replayed, _ = decide(replayed, envelope)
        if replayed is not None and replayed.inconclusive is not None and replayed.paused_by:
            assert replayed == paused
            seen_paused += 1
    assert seen_paused == 2  # after the extension's answer, and after the pause golive emitted (no change)
    assert replayed == run.state
