"""Messages that say what happened (issue 15): a run that failed before traffic moved is not announced as a rollback;
a rollback says what it undid (traffic as read back, indexes dropped or kept) and how long after the breach; the first
line carries the outcome, the reason with its numbers and the run's link; who approved, paused or continued and why
are in the messages that end the run; each sink gets its text escaped its own way, and none gets HTML entities."""

from __future__ import annotations

import json

from golive.demo.run import format_slack
from golive.shared.events import (
    PAUSED_BY_GOLIVE,
    ApprovalGranted,
    ContinueRequested,
    IndexResult,
    MigrationsApplied,
    PauseRequested,
    PhaseStarted,
    RunFinished,
    StageJudged,
    StepFailed,
    StepRef,
    TrafficRolledBack,
    WindowJudged,
)
from golive.shared.story import story_of
from golive.stack.webhook_sink import slack_line
from tests.builders import carried, skeleton_dict
from tests.notifier.run_events import RunLog, at_stage, by_kind, fields, posts

PREFLIGHT_REASON = ("preflight:check:stripe_recent failed: stripe_recent: error rate 100% > 1% over 40 requests "
                    "(http_5xx: 40)")
BREACH = ("stage2:hold failed: stage 2 (50%): stripe_recent window 3 failed: p95 612 ms > 400 ms over 1,204 requests "
          "(2 consecutive); 2 consecutive failed windows of stripe_recent reach consecutive_failure_limit 2")


def plan(drop_indexes: bool = True, **notifications) -> dict:
    """The skeleton with a backup gate and a preflight check, rollback.drop_indexes as given."""
    def edit(p: dict) -> None:
        p["preflight"] = [{"gate": "Confirm backup completion"}, {"probe": "stripe_recent", "duration": "1s"}]
        p["rollback"] = {"drop_indexes": drop_indexes}
        p["notifications"].update(notifications)

    return carried(skeleton_dict(edit=edit))


def preflight_check_fails(log: RunLog) -> RunLog:
    at = StepRef(phase="preflight", kind="check", probe="stripe_recent")
    log.add(PhaseStarted(phase="preflight", step="preflight:check:stripe_recent", at=at, detail="stripe_recent for 1s"))
    log.add(StepFailed(step="preflight:check:stripe_recent", at=at, reason=PREFLIGHT_REASON, cause="threshold"))
    log.add(RunFinished(outcome="rolled_back", reason=PREFLIGHT_REASON, duration_s=4.0))
    return log


def migrated(log: RunLog) -> RunLog:
    log.add(PhaseStarted(phase="migrate", step="migrate", at=StepRef(phase="migrate", kind="migrate")))
    log.add(MigrationsApplied(results=[IndexResult(name="stripe_events_created", index="idx_stripe_events_created",
                                                   action="built", seconds=1.5)]))
    return log


def gate_approved(log: RunLog, comment: str = "snapshot bk-2291 verified, 02:03 UTC") -> RunLog:
    log.add(PhaseStarted(phase="preflight", step="preflight:gate:1", at=StepRef(phase="preflight", kind="gate"),
                         detail="Confirm backup completion: waiting for `golive approve run-n1`"))
    log.add(ApprovalGranted(stage=None, approved_by="alice", comment=comment))
    return log


def stage2_breaches(log: RunLog, breach_at: float, back_at: float) -> RunLog:
    """Stage 2's hold fails at ``breach_at`` s; traffic is back on dpl_old (read back 0%) at ``back_at`` s."""
    log.add(PhaseStarted(phase="canary", step="stage2:shift:50", at=at_stage(2, "shift"), detail="50% to dpl_new"))
    log.add(PhaseStarted(phase="canary", step="stage2:hold", at=at_stage(2, "hold"), detail="2s: stripe_recent"))
    log.add(StepFailed(step="stage2:hold", at=at_stage(2, "hold"), reason=BREACH, cause="analysis"), at=breach_at)
    log.add(StageJudged(stage=2, weight=50, verdict="fail", reason=BREACH), at=breach_at)
    log.add(TrafficRolledBack(provider="dry-run", canary="dpl_new", to="dpl_old", verified_weight=0, before=50),
            at=back_at)
    log.add(RunFinished(outcome="rolled_back", reason=BREACH, duration_s=95.0), at=back_at + 0.5)
    return log


def test_breach_to_rollback_is_the_reports_figure_from_the_first_failed_window_not_from_the_step_failing():
    """Slack and the report give one figure (the run's story): from the deciding stage's first failed window, as
    measured, to traffic read back on the previous deployment; not from the moment the step was failed."""
    log = migrated(RunLog(plan=plan(drop_indexes=False)).start()).stage(1, 10)
    log.add(WindowJudged(step="stage2:hold", at=at_stage(2, "hold"), probe="stripe_recent", index=2, verdict="fail",
                         reason="p95 610 ms > 400 ms", count=900, p95_ms=610.0, failures=1, consecutive_failures=1),
            at=37.5)
    stage2_breaches(log, breach_at=40.0, back_at=41.25)

    (ended,) = by_kind(posts(log), "run_rolled_back")

    assert story_of(log.events).breach_to_rollback_s == 3.75
    assert fields(ended)["Breach to rollback"] == "3.8 s"  # 1.2 s from the step failing was the old figure


# --- finding 3: a run that fails before traffic moves is not a production rollback ----------------------------------


def test_a_failed_preflight_says_nothing_changed_and_which_step_failed_why_not_a_production_rollback():
    log = preflight_check_fails(RunLog(plan=plan()).start())

    sent = posts(log)
    (stopped,) = by_kind(sent, "rollback_started")
    (ended,) = by_kind(sent, "run_rolled_back")

    for body in (stopped, ended):
        assert "Rollback Triggered" not in body["text"] and "rolled back to" not in body["text"], body["text"]
    assert stopped["text"] == ("🛑 skeleton Production go-live stopped before traffic moved: preflight:check:stripe_recent "
                               "failed: stripe_recent: error rate 100% &gt; 1% over 40 requests (http_5xx: 40)")
    assert fields(stopped)["Action"] == "Nothing to roll back in traffic: it never moved"
    assert ended["text"].startswith("🛑 skeleton Production go-live failed before traffic moved, nothing changed: "
                                    "preflight:check:stripe_recent failed: stripe_recent: error rate 100% &gt; 1%")
    assert fields(ended)["Undone"] == "nothing changed"
    assert "Breach to rollback" not in fields(ended) and "Progress" not in fields(ended)


def test_a_failed_smoke_check_after_the_migration_says_traffic_never_moved_and_the_indexes_were_kept():
    log = migrated(RunLog(plan=plan(drop_indexes=False)).start())
    at = StepRef(phase="smoke", kind="smoke", probe="stripe_recent")
    reason = "smoke:stripe_recent failed: stripe_recent: p95 31.2 ms > 20 ms over 600 requests"
    log.add(PhaseStarted(phase="smoke", step="smoke:stripe_recent", at=at))
    log.add(StepFailed(step="smoke:stripe_recent", at=at, reason=reason, cause="threshold"))
    log.add(RunFinished(outcome="rolled_back", reason=reason, duration_s=9.0))

    (ended,) = by_kind(posts(log), "run_rolled_back")

    assert ended["text"] == ("🛑 skeleton Production go-live failed before traffic moved: smoke:stripe_recent failed: "
                             "stripe_recent: p95 31.2 ms &gt; 20 ms over 600 requests")
    assert fields(ended)["Undone"] == ("traffic never moved; indexes kept idx_stripe_events_created "
                                       "(rollback.drop_indexes: false)")


def test_a_failed_migration_does_not_claim_nothing_changed_the_indexes_built_before_it_are_kept():
    """The migrator answers a failure with no list of what it built before it: the message does not guess."""
    log = RunLog(plan=plan(drop_indexes=False)).start()
    reason = "migrate failed: reviews_status_unique: could not create unique index (duplicate key)"
    log.add(PhaseStarted(phase="migrate", step="migrate", at=StepRef(phase="migrate", kind="migrate")))
    log.add(StepFailed(step="migrate", at=StepRef(phase="migrate", kind="migrate"), reason=reason))
    log.add(RunFinished(outcome="rolled_back", reason=reason, duration_s=9.0))

    sent = posts(log)
    (stopped,) = by_kind(sent, "rollback_started")
    (ended,) = by_kind(sent, "run_rolled_back")

    assert stopped["text"].startswith("🛑 skeleton Production go-live stopped before traffic moved: migrate failed: ")
    assert fields(stopped)["Action"] == ("Nothing to roll back in traffic: it never moved; indexes built before the "
                                         "migrations failed kept (rollback.drop_indexes: false)")
    assert ended["text"].startswith("🛑 skeleton Production go-live failed before traffic moved: migrate failed: ")
    assert fields(ended)["Undone"] == ("traffic never moved; indexes kept those built before the migrations failed "
                                       "(rollback.drop_indexes: false)")


# --- a rollback says what it undid, how fast, and why, in its first line ----------------------------------------------


def test_a_rollback_says_in_its_first_line_where_and_why_with_the_numbers_and_what_it_undid():
    log = migrated(RunLog(plan=plan(drop_indexes=False)).start()).stage(1, 10)
    stage2_breaches(log, breach_at=40.0, back_at=41.25)

    sent = posts(log)
    (rollback,) = by_kind(sent, "rollback_started")
    (ended,) = by_kind(sent, "run_rolled_back")

    assert rollback["text"] == ("🚨 skeleton Production Rollback Triggered: stage 2 (50%) failed: stripe_recent window 3 "
                                "failed: p95 612 ms &gt; 400 ms over 1,204 requests (2 consecutive); 2 consecutive failed "
                                "windows of stripe_recent reach consecutive_failure_limit 2")
    assert fields(rollback)["Action"] == ("Rollback to previous deployment dpl_old; indexes idx_stripe_events_created "
                                          "kept (rollback.drop_indexes: false)")
    assert ended["text"].startswith("↩️ skeleton Production rolled back to dpl_old: stage 2 (50%) failed: stripe_recent "
                                    "window 3 failed: p95 612 ms &gt; 400 ms")
    got = fields(ended)
    assert got["Undone"] == ("traffic back on dpl_old, dpl_new read back at 0%, 1.2 s after the breach was measured; "
                             "indexes kept idx_stripe_events_created (rollback.drop_indexes: false)")
    assert got["Breach to rollback"] == "1.2 s"
    assert got["Indexes"] == "kept idx_stripe_events_created (rollback.drop_indexes: false)"
    assert got["Progress"] == "10% ✓ → 50% ✗ → 100%"
    assert "Outcome" not in got  # "Rolled back: stage1:shift:10" named a step, not what was undone


def test_success_and_each_stage_say_the_numbers_that_decided_in_the_first_line():
    log = RunLog().start().stage(1, 10, p95=3.5).stage(2, 50, p95=7.25).stage(3, 100, p95=4.0).succeed()

    sent = posts(log)

    assert by_kind(sent, "stage_passed")[1]["text"] == (
        "✅ skeleton stage 2 of 3 passed (50% on dpl_new): stripe_recent p95 7.25 ms &lt;= 400 ms over 300 requests")
    (success,) = by_kind(sent, "run_succeeded")
    assert success["text"] == ("✅ skeleton Production Deployment SUCCESS: dpl_new live after 45 minutes; stage 3 (100%): "
                               "stripe_recent p95 4 ms &lt;= 400 ms over 300 requests")


def test_the_first_line_links_the_run_when_the_plan_gives_a_report_url():
    url = "https://ops.example.com/golive/{run_id}?view=report&tab=1"
    log = preflight_check_fails(RunLog(plan=plan(report_url=url)).start())
    (ended,) = by_kind(posts(log), "run_rolled_back")
    hook_plan = plan(report_url=url, sinks={"hook": {"type": "webhook", "webhook_url_env": "X"}})
    (hooked,) = by_kind(posts(preflight_check_fails(RunLog(plan=hook_plan).start())), "run_rolled_back")

    assert ended["text"].endswith(" · <https://ops.example.com/golive/run-n1?view=report&amp;tab=1|report>")
    assert "Report" not in fields(ended)  # on the first line, not again in a field
    assert hooked["notifylink"] == "https://ops.example.com/golive/run-n1?view=report&tab=1"
    assert hooked["notifytext"].endswith(" · report: https://ops.example.com/golive/run-n1?view=report&tab=1")


def test_without_a_report_url_no_message_has_a_link_or_an_empty_report_field():
    log = preflight_check_fails(RunLog(plan=plan()).start())

    for _kind, _sink, body in posts(log):
        assert "|report>" not in body["text"] and "Report" not in fields(body)


# --- escaping: each sink its own way -------------------------------------------------------------------------------------


def test_slack_escapes_only_ampersand_and_angle_brackets_and_the_webhook_gets_the_text_as_it_is():
    reason = "stage2:hold failed: p95 612 ms > 400 ms & error rate 3% >= 1% for <canary> \"dpl_new\" it's"
    hook = {"slack": {"type": "slack", "webhook_url_env": "A"}, "hook": {"type": "webhook", "webhook_url_env": "B"}}
    log = RunLog(plan=plan(sinks=hook)).start().stage(1, 10)
    log.add(PhaseStarted(phase="canary", step="stage2:shift:50", at=at_stage(2, "shift")))
    log.add(StepFailed(step="stage2:hold", at=at_stage(2, "hold"), reason=reason))

    sent = {sink: body for kind, sink, body in posts(log) if kind == "rollback_started"}

    slack_why = ("p95 612 ms &gt; 400 ms &amp; error rate 3% &gt;= 1% for &lt;canary&gt; \"dpl_new\" it's")
    assert sent["slack"]["text"].endswith(slack_why)
    assert fields(sent["slack"])["Reason"] == "stage2:hold failed: " + slack_why
    text = sent["hook"]["notifytext"]
    assert text.endswith("p95 612 ms > 400 ms & error rate 3% >= 1% for <canary> \"dpl_new\" it's")
    body = json.dumps(sent["hook"], ensure_ascii=False)
    for entity in ("&gt;", "&lt;", "&amp;", "&quot;", "&#39;", "&#x27;"):
        assert entity not in body, entity


# --- finding 5: who approved, paused and continued, and why --------------------------------------------------------------


def test_who_approved_the_backup_gate_with_what_they_typed_and_who_paused_and_continued_are_in_the_end_messages():
    log = gate_approved(RunLog(plan=plan()).start()).stage(1, 10)
    log.add(PauseRequested(reason="checking the Grafana board before 50%", requested_by="bob"))
    log.add(ContinueRequested(requested_by="carol", reason="board is green"))
    log.stage(2, 50).stage(3, 100).succeed()
    failed = gate_approved(RunLog(plan=plan()).start()).stage(1, 10)
    stage2_breaches(failed, breach_at=40.0, back_at=41.0)

    (success,) = by_kind(posts(log), "run_succeeded")
    (rollback,) = by_kind(posts(failed), "rollback_started")
    (ended,) = by_kind(posts(failed), "run_rolled_back")

    approved = "Confirm backup completion: approved by alice: “snapshot bk-2291 verified, 02:03 UTC”"
    assert fields(success)["Approved"] == approved
    assert fields(success)["Operator actions"] == ("paused by bob at stage1:hold: checking the Grafana board before "
                                                   "50%; continued by carol: board is green")
    assert fields(rollback)["Approved"] == approved and fields(ended)["Approved"] == approved


def test_a_run_golive_paused_on_an_inconclusive_stage_is_told_at_once_with_the_counts_a_persons_pause_is_not():
    why = ("stage 1 (10%) inconclusive: 3 inconclusive windows; stripe_recent 3 of 3 windows inconclusive (last: 5 "
           "requests < min_samples 20)")
    log = RunLog(plan=plan()).start().stage(1, 10)
    log.add(PauseRequested(reason="checking the Grafana board", requested_by="bob"))
    log.add(ContinueRequested(requested_by="bob"))
    log.add(PauseRequested(reason=why, requested_by=PAUSED_BY_GOLIVE))

    (paused,) = by_kind(posts(log), "run_paused")

    shown = why.replace("<", "&lt;")  # Slack's escape of the reason's text
    assert paused["text"].startswith(f"⏸️ skeleton Production paused, waiting for you: {shown}")
    assert fields(paused)["Reason"] == shown
    assert fields(paused)["Action"] == "`golive continue run-n1` lets the stage pass, `golive abort run-n1` rolls back"


def test_an_approval_without_a_comment_says_nothing_was_typed():
    log = gate_approved(RunLog(plan=plan()).start(), comment="").stage(1, 10).stage(2, 50).stage(3, 100).succeed()

    (success,) = by_kind(posts(log), "run_succeeded")

    assert fields(success)["Approved"] == "Confirm backup completion: approved by alice (nothing typed)"


def test_a_shift_that_never_answered_may_have_moved_traffic_so_its_failure_is_announced_as_a_rollback():
    """A shift that never answered (timed out) may have moved traffic: the rollback is announced as one."""
    log = RunLog(plan=plan()).start()
    log.add(PhaseStarted(phase="canary", step="stage1:shift:10", at=at_stage(1, "shift")))
    log.add(StepFailed(step="stage1:shift:10", at=at_stage(1, "shift"), reason="stage1:shift:10 failed: no answer",
                       cause="timeout"))

    (rollback,) = by_kind(posts(log), "rollback_started")

    assert rollback["text"].startswith("🚨 skeleton Production Rollback Triggered: stage 1 (10%) failed: no answer")



# --- finding 6: the Slack text printed on the terminal (`golive up`, the demo) ---------------------------------------------


def test_the_printed_slack_message_is_the_whole_message_as_slack_shows_it_without_its_escapes():
    log = migrated(RunLog(plan=plan(drop_indexes=False, report_url="https://ops.example.com/r/{run_id}?a=1&b=2"))
                   .start()).stage(1, 10)
    stage2_breaches(log, breach_at=40.0, back_at=41.25)
    (ended,) = by_kind(posts(log), "run_rolled_back")

    printed = format_slack(ended)

    assert printed == slack_line(ended)  # the demo prints what `golive up` prints
    assert printed.startswith("slack <- ↩️ skeleton Production rolled back to dpl_old: stage 2 (50%) failed: "
                              "stripe_recent window 3 failed: p95 612 ms > 400 ms over 1,204 requests")
    assert " · report: https://ops.example.com/r/run-n1?a=1&b=2 | Undone: traffic back on dpl_old" in printed
    assert "| Breach to rollback: 1.2 s |" in printed
    assert "| Indexes: kept idx_stripe_events_created (rollback.drop_indexes: false) |" in printed
    assert "&gt;" not in printed and "&lt;" not in printed and "&amp;" not in printed


def test_the_printed_slack_message_is_text_whatever_it_holds():
    body = {"text": "deploy \x1b[2J\x1b]0;owned\x07 [bold red]x[/] \u202eevil &amp;lt;b&amp;gt;\nnext",
            "attachments": [{"color": "danger", "fields": [{"title": "Why", "value": "a\tb &lt;c&gt;", "short": True}]}]}

    printed = slack_line(body)

    assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed and "\n" not in printed
    assert "[bold red]x[/]" in printed  # as typed: nothing interprets it
    assert "&lt;b&gt;" in printed  # what the sender typed as "&lt;" is shown as typed
    assert printed.endswith("| Why: a b <c>")
