"""The messages: run events folded into moments, routed, rendered from templates, shaped by each sink."""

from __future__ import annotations

import yaml

from golive.services.notifier.moments import observe
from golive.services.notifier.templates import check_templates, render_moment
from golive.shared.events import PhaseStarted, ProbesCompleted, StageJudged
from golive.shared.plan.notifications import Notifications
from tests.builders import skeleton_dict, write_plan
from tests.harness import REPO, run_cli
from tests.notifier.run_events import RunLog, at_stage, by_kind, fields, plan_dict, posts, probe

SLACK_COLORS = {"good", "warning", "danger"}


def assert_slack_attachment_message(body: dict) -> None:
    """Slack's documented incoming-webhook shape: text, attachments with color and short title/value fields."""
    assert set(body) == {"text", "attachments"} and isinstance(body["text"], str) and body["text"]
    (attachment,) = body["attachments"]
    assert set(attachment) == {"color", "fields"}
    assert attachment["color"] in SLACK_COLORS or attachment["color"].startswith("#")
    for field in attachment["fields"]:
        assert set(field) == {"title", "value", "short"} and field["short"] is True
        assert isinstance(field["title"], str) and isinstance(field["value"], str) and field["value"]


# --- the runbook's three messages ----------------------------------------------------------------


def test_start_message_is_the_runbooks_warning_with_environment_deployment_and_window():
    (start,) = by_kind(posts(RunLog().start()), "run_started")

    assert_slack_attachment_message(start)
    assert start["text"] == "🚀 Starting skeleton Production Deployment"
    assert start["attachments"][0]["color"] == "warning"
    assert list(fields(start).items()) == [
        ("Environment", "Production"), ("Deployment ID", "dpl_new"), ("Maintenance Window", "Sun 02:00-04:00 UTC"),
    ]


def test_success_message_is_the_runbooks_good_with_status_duration_performance_and_stage_progress():
    log = RunLog().start().stage(1, 10).stage(2, 50).stage(3, 100).succeed()

    (success,) = by_kind(posts(log), "run_succeeded")

    assert_slack_attachment_message(success)
    assert success["text"].startswith("✅ skeleton Production Deployment SUCCESS: dpl_new live after 45 minutes")
    assert success["attachments"][0]["color"] == "good"
    got = fields(success)
    assert list(got)[:3] == ["Status", "Duration", "Performance"]
    assert (got["Status"], got["Duration"], got["Performance"]) == ("LIVE", "45 minutes", "All criteria met")
    assert got["Stages"] == "10% ✓ → 50% ✓ → 100% ✓"


def test_rollback_message_is_the_runbooks_danger_with_action_and_the_reason_with_its_numbers():
    reason = "stage2:hold failed: p95 512.00 > 400 over 300 requests"
    log = RunLog().start().stage(1, 10).stage(2, 50, p95=512.0)
    log.fail_and_roll_back("stage2:hold", reason, at_stage(2, "hold"), 50)

    sent = posts(log)
    (rollback,) = by_kind(sent, "rollback_started")

    assert_slack_attachment_message(rollback)
    assert rollback["text"] == ("🚨 skeleton Production Rollback Triggered: stage 2 (50%) failed: "
                                "p95 512.00 &gt; 400 over 300 requests")
    assert rollback["attachments"][0]["color"] == "danger"
    got = fields(rollback)
    assert list(got)[:2] == ["Action", "Reason"]
    assert got["Action"] == "Rollback to previous deployment dpl_old"
    assert got["Reason"] == reason.replace(">", "&gt;")  # Slack's escaping; it shows ">"
    assert got["Failed at"] == "stage 2 (50%): stage2:hold"
    (rolled_back,) = by_kind(sent, "run_rolled_back")
    assert rolled_back["text"].startswith("↩️ skeleton Production rolled back to dpl_old: stage 2 (50%) failed: p95 512")
    assert [k for k, _s, _b in sent] == ["run_started", "stage_passed", "rollback_started", "run_rolled_back"]


def test_each_stage_passed_is_announced_once_with_its_weight_and_measured_values():
    log = RunLog().start().stage(1, 10, p95=3.5).stage(2, 50, p95=7.25).stage(3, 100).succeed()

    stages = by_kind(posts(log), "stage_passed")

    assert [s["text"].split(":")[0] for s in stages] == [
        f"✅ skeleton stage {n} of 3 passed ({w}% on dpl_new)" for n, w in ((1, 10), (2, 50), (3, 100))
    ]
    # the judge's words (shared/judge.py), escaped for Slack's mrkdwn ("<" is "&lt;" there)
    assert fields(stages[0])["Checks"] == "stripe_recent p95 3.5 ms &lt;= 400 ms over 300 requests"
    assert fields(stages[1])["Checks"] == "stripe_recent p95 7.25 ms &lt;= 400 ms over 300 requests"
    assert fields(stages[1])["Progress"] == "10% ✓ → 50% ✓ → 100%"


def moments_of(log: RunLog) -> list[tuple[str, str]]:
    """(kind, id of the event that made it due) of every moment of the run's events, in order."""
    view, out = None, []
    for envelope in log.events:
        view, moments = observe(view, envelope)
        out += [(m.kind, m.event.id) for m in moments]
    return out


def test_stage_passed_is_told_on_the_coordinators_verdict_not_inferred_from_the_next_step():
    log = RunLog().start().stage(1, 10)
    verdict = log.events[-1]
    log.add(PhaseStarted(phase="canary", step="stage2:shift:50", at=at_stage(2, "shift")))
    log.stage(2, 50, p95=512.0).fail_and_roll_back("stage2:hold", "breach", at_stage(2, "hold"), 50)

    told = [(kind, event) for kind, event in moments_of(log) if kind == "stage_passed"]

    assert isinstance(verdict.data, StageJudged) and verdict.data.verdict == "pass"
    assert told == [("stage_passed", verdict.id)]  # stage 2's fail verdict is told by rollback_started


def test_a_run_stored_before_stages_were_judged_tells_no_stage_passed_on_replay():
    """Such a run was told its stages when they passed (on the next step's start); replayed, nothing is told again."""
    log = RunLog().start()
    for n, weight in ((1, 10), (2, 50)):  # the events of then: step names only, no verdicts
        log.add(PhaseStarted(phase="canary", step=f"stage{n}:shift:{weight}"))
        log.add(PhaseStarted(phase="canary", step=f"stage{n}:hold"))
        log.add(ProbesCompleted(results=[probe(True, 3.0)], passed=True, summary="ok", duration_s=2.0))
    log.succeed()

    kinds = [kind for kind, _event in moments_of(log)]

    assert kinds == ["run_started", *["phase_started"] * 4, "run_succeeded"]


def test_block_kit_format_carries_the_same_text_and_fields_in_sections():
    plan = plan_dict(sinks={"slack": {"type": "slack", "webhook_url_env": "X", "format": "blocks"}})

    (start,) = by_kind(posts(RunLog(plan=plan).start()), "run_started")

    assert start["text"] == "🚀 Starting skeleton Production Deployment"
    (attachment,) = start["attachments"]
    assert attachment["color"] == "warning"
    header, section = attachment["blocks"]
    assert header == {"type": "section", "text": {"type": "mrkdwn", "text": start["text"]}}
    assert section["fields"][1] == {"type": "mrkdwn", "text": "*Deployment ID*\ndpl_new"}


def test_generic_webhook_gets_the_cloudevent_itself():
    plan = plan_dict(sinks={"hook": {"type": "webhook", "webhook_url_env": "X"}})
    log = RunLog(plan=plan).start()

    ((kind, sink, body),) = posts(log)

    assert (kind, sink) == ("run_started", "hook")
    assert body["specversion"] == "1.0" and body["id"] == log.events[0].id
    assert body["type"] == "golive.coordinator.run_started.v1" and body["runid"] == "run-n1"
    assert body["data"]["deploy_id"] == "dpl_new"
    assert body["notifykind"] == "run_started" and body["notifyseverity"] == "warning"


# --- plans: overrides, additions, routes ---------------------------------------------------------


def test_a_plan_template_override_changes_the_message():
    plan = plan_dict(templates={"run_started": {
        "text": "Go-live {{ plan_name }} → {{ deploy_id }} (was {{ previous_deploy_id }})",
        "fields": {"Window": "{{ maintenance_window }}", "Stages": "{{ weights | join(' / ') }}"},
    }})

    (start,) = by_kind(posts(RunLog(plan=plan).start()), "run_started")

    assert start["text"] == "Go-live skeleton → dpl_new (was dpl_old)"
    assert start["attachments"][0]["color"] == "warning"  # severity kept from the default
    assert fields(start) == {"Window": "Sun 02:00-04:00 UTC", "Stages": "10 / 50 / 100"}


def test_routes_send_kinds_to_named_sinks_from_a_severity_up_with_an_added_template():
    plan = plan_dict(
        sinks={"slack": {"webhook_url_env": "A"}, "pager": {"type": "webhook", "webhook_url_env": "B"}},
        templates={"terse": {"text": "{{ plan_name }}: {{ outcome or phase }}", "fields": {}}},
        routes=[
            {"events": ["run_started", "stage_passed", "rollback_started", "run_rolled_back"], "sinks": ["slack"],
             "template": "terse"},
            {"events": ["rollback_started", "run_rolled_back", "run_started"], "sinks": ["pager"], "min_severity": "danger"},
        ],
    )
    log = RunLog(plan=plan).start().stage(1, 10)
    log.add(PhaseStarted(phase="canary", step="stage2:shift:50", at=at_stage(2, "shift")))
    log.fail_and_roll_back("stage2:shift:50", "traffic API unreachable", at_stage(2, "shift"), 50)

    sent = [(k, s) for k, s, _b in posts(log)]

    assert sent == [("run_started", "slack"), ("stage_passed", "slack"), ("rollback_started", "slack"),
                    ("rollback_started", "pager"), ("run_rolled_back", "slack"), ("run_rolled_back", "pager")]
    assert posts(log)[0][2]["text"] == "skeleton:"  # the added template, rendered


def test_the_first_plans_on_list_still_selects_kinds():
    log = RunLog(plan=plan_dict(on=["rollback"])).start().stage(1, 10)
    log.fail_and_roll_back("stage1:hold", "boom", at_stage(1, "hold"), 10)

    assert [k for k, _s, _b in posts(log)] == ["rollback_started", "run_rolled_back"]


def test_a_template_that_fails_at_run_time_falls_back_to_the_default_message():
    spec = Notifications.model_validate({"templates": {"run_started": {"text": "{{ 1 / 0 }}"}}})
    log = RunLog().start()
    view, (moment,) = observe(None, log.events[0])
    problems = []

    notice = render_moment(spec, "run_started", "run_started", moment.context, moment.event,
                           lambda name, why: problems.append((name, why)))

    assert notice.text == "🚀 Starting skeleton Production Deployment"
    assert problems and problems[0][0] == "run_started" and "division" in problems[0][1]


def test_plan_check_reports_a_template_error_with_where_it_is(tmp_path):
    data = skeleton_dict()
    data["notifications"]["templates"] = {
        "run_succeeded": {"fields": {"Duration": "{{ duraton }}"}},
        "rollback_started": {"text": "{% if reason %}unclosed"},
    }
    path = write_plan(tmp_path, data)

    result = run_cli("plan", "check", str(path), env=None)

    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    lines = path.read_text().splitlines()
    duration = next(i for i, line in enumerate(lines, 1) if "duraton" in line)
    unclosed = next(i for i, line in enumerate(lines, 1) if "unclosed" in line)
    assert (f"{path}:{duration}: notifications.templates.run_succeeded.fields.Duration: "
            "UndefinedError: 'duraton' is undefined") in output
    assert f"{path}:{unclosed}: notifications.templates.rollback_started.text: TemplateSyntaxError" in output


def test_plan_check_rejects_an_unknown_sink_type_and_a_route_to_an_undefined_sink(tmp_path):
    data = skeleton_dict()
    data["notifications"]["sinks"]["teams"] = {"type": "teams", "webhook_url_env": "T"}
    path = write_plan(tmp_path, data)
    result = run_cli("plan", "check", str(path), env=None)
    assert result.returncode == 2 and "notifications.sinks.teams.type: no sink of type 'teams'" in result.stdout + result.stderr

    data["notifications"]["sinks"].pop("teams")
    data["notifications"]["routes"] = [{"events": ["run_started"], "sinks": ["pager"]}]
    path.write_text(yaml.safe_dump(data))
    result = run_cli("plan", "check", str(path), env=None)
    assert result.returncode == 2 and "sink(s) pager that are not defined" in result.stdout + result.stderr


def test_a_webhook_url_pasted_where_its_variable_belongs_is_rejected_without_repeating_it(tmp_path):
    data = skeleton_dict()
    secret_url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    data["notifications"]["sinks"]["slack"]["webhook_url_env"] = secret_url
    path = write_plan(tmp_path, data)

    result = run_cli("plan", "check", str(path), env=None)

    assert result.returncode == 2
    assert "notifications.sinks.slack.webhook_url_env" in result.stdout + result.stderr
    assert "XXXXSECRETXXXX" not in result.stdout + result.stderr


def test_the_notifications_page_example_is_a_valid_communication_plan():
    readme = (REPO / "docs" / "notifications.md").read_text().split("## Notifications")[1].split("## ")[0]
    example = yaml.safe_load(readme.split("```yaml\n")[1].split("```")[0])["notifications"]

    spec = Notifications.model_validate(example)
    assert check_templates(spec) == []
    assert {s.type for s in spec.sinks.values()} == {"slack", "webhook"}


def test_start_message_window_defaults_to_the_plans_maintenance_window():
    from golive.services.notifier.message_context import _plan_window
    from golive.shared.plan.window import Window

    window = Window.model_validate({"maintenance": {"days": ["sat", "sun"], "start": "02:00:00", "end": "04:00:00",
                                                    "timezone": "Europe/Helsinki"}})
    assert _plan_window(window) == "Sat,Sun 02:00-04:00 Europe/Helsinki"
    assert _plan_window(Window()) == ""
