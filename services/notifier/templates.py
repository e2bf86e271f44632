"""Messages from Jinja2 templates: a default per kind of moment, which a plan may override or add to.

The defaults reproduce the runbook's Communication Plan (start: warning, Environment / Deployment ID /
Maintenance Window; success: good, Status LIVE / Duration / Performance; rollback: danger, Action / Reason)
and add stage progress and the reason of a rollback with its numbers. A field whose value renders empty is
left out, so ``Report: {{ report_url }}`` only shows when the plan gives a report link.

Templates run in Jinja2's sandbox with StrictUndefined and within limits of steps, time and size
(sandbox.py: a template that loops, recurses or builds huge strings is cut off): a misspelt name or a
template over a limit is an error, which `golive plan check` reports before anything runs
(``check_templates``). At run time a template that still fails falls back to the kind's default, so a
message is never lost to a template, and no template can hang the notifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

from golive.services.notifier.run_view import ProbeResult
from golive.services.notifier.sandbox import render_bounded
from golive.shared.envelope import Envelope
from golive.shared.plan.notifications import MessageTemplate, NotificationKind, Notifications

KINDS: tuple[str, ...] = NotificationKind.__args__

# who approved a gate (and what they typed), who paused, continued or aborted the run and why: in every message
# that ends or undoes a run
_OPERATORS = {"Approved": "{{ approvals_text }}", "Operator actions": "{{ operator_text }}"}

DEFAULT_TEMPLATES: dict[str, MessageTemplate] = {
    "run_started": MessageTemplate(
        text="🚀 Starting {{ plan_name }} {{ environment }} Deployment",
        severity="warning",
        fields={
            "Environment": "{{ environment }}",
            "Deployment ID": "{{ deploy_id }}",
            "Maintenance Window": "{{ maintenance_window or '-' }}",
        },
    ),
    "phase_started": MessageTemplate(
        text="▶️ {{ plan_name }}: {{ phase }} {{ step }}",
        severity="info",
        fields={"Detail": "{{ detail }}", "Progress": "{{ progress if stage else '' }}"},
    ),
    "stage_passed": MessageTemplate(
        text="✅ {{ plan_name }} stage {{ stage.number }} of {{ stages_total }} passed ({{ stage.weight }}% on "
             "{{ deploy_id }}): {{ stage.checks_text }}",
        severity="info",
        fields={
            "Traffic": "{{ stage.weight }}% to {{ deploy_id }}",
            "Checks": "{{ stage.checks_text }}",
            "Progress": "{{ progress }}",
        },
    ),
    "rollback_started": MessageTemplate(
        # a run that fails before its first traffic shift changed no traffic: it is stopped, not rolled back
        text="{% if traffic_moved %}🚨 {{ plan_name }} {{ environment }} Rollback Triggered: {{ failed_where }} failed: "
             "{{ why }}{% else %}🛑 {{ plan_name }} {{ environment }} go-live stopped before traffic moved: "
             "{{ (failed_step ~ ' failed: ') if failed_step }}{{ why }}{% endif %}",
        severity="danger",
        fields={
            "Action": "{{ rollback_action }}",
            "Reason": "{{ reason }}",
            "Failed at": "{{ failed_at }}",
            "Progress": "{{ progress if stage else '' }}",
            **_OPERATORS,
        },
    ),
    "run_succeeded": MessageTemplate(
        text="✅ {{ plan_name }} {{ environment }} Deployment SUCCESS: {{ deploy_id }} live after {{ duration }}"
             "{{ ('; ' ~ decided) if decided }}",
        severity="success",
        fields={
            "Status": "LIVE",
            "Duration": "{{ duration }}",
            "Performance": "All criteria met",
            "Deployment ID": "{{ deploy_id }}",
            "Stages": "{{ progress }}",
            **_OPERATORS,
        },
    ),
    "run_rolled_back": MessageTemplate(
        text="{% if traffic_moved %}↩️ {{ plan_name }} {{ environment }} rolled back to "
             "{{ previous_deploy_id or 'the previous deployment' }}: {% else %}🛑 {{ plan_name }} {{ environment }} "
             "go-live failed before traffic moved{{ ', nothing changed' if nothing_changed }}: {% endif %}"
             "{{ (failed_where ~ ' failed: ') if failed_where }}{{ why }}",
        severity="danger",
        fields={
            "Undone": "{{ undone_text }}",
            "Reason": "{{ reason }}",
            "Breach to rollback": "{{ breach_to_rollback }}",
            "Indexes": "{{ indexes }}",
            "Progress": "{{ progress if traffic_moved else '' }}",
            "Duration": "{{ duration }}",
            **_OPERATORS,
        },
    ),
    "watch_breached": MessageTemplate(
        text="⚠️ {{ plan_name }} {{ environment }}: post-deploy check failed on {{ deploy_id }}: {{ reason }}",
        severity="danger",
        fields={
            "Reason": "{{ reason }}",
            "Deployment ID": "{{ deploy_id }}",
            "Action": "The deployment stays live: check it, and roll back by hand if it must go",
        },
    ),
    "watch_summary": MessageTemplate(
        text="📊 {{ plan_name }} {{ environment }}: post-deploy summary for {{ deploy_id }}: {{ reason }}",
        severity="info",
        fields={"Summary": "{{ reason }}"},
    ),
    "run_paused": MessageTemplate(
        # golive paused the run itself (a hold with too little evidence): someone has to look, then continue or abort
        text="⏸️ {{ plan_name }} {{ environment }} paused, waiting for you: {{ reason }}",
        severity="warning",
        fields={"Reason": "{{ reason }}", "Action": "`golive continue {{ run_id }}` lets the stage pass, "
                "`golive abort {{ run_id }}` rolls back", "Deployment ID": "{{ deploy_id }}", "Progress": "{{ progress }}"},
    ),
    "needs_human": MessageTemplate(
        text="🆘 {{ plan_name }} {{ environment }} rollback needs a human: {{ why }}",
        severity="critical",
        fields={
            "Reason": "{{ reason }}",
            "Left to undo": "{{ left_to_undo | join(', ') or '-' }}",
            "Undone": "{{ undone_text }}",
            **_OPERATORS,
        },
    ),
}

@dataclass(frozen=True)
class Notice:
    """A rendered message, ready for any sink. ``text`` is its first line: what happened and why, with the numbers;
    ``link`` the run's report (the plan's ``notifications.report_url``), which each sink puts on that line its own
    way. Text is plain: each sink escapes it as its receiver needs."""

    kind: str
    severity: str
    text: str
    fields: tuple[tuple[str, str], ...]
    event: Envelope
    link: str = ""

    @property
    def first_line(self) -> str:
        """The text with the link, as plain text (for receivers that format nothing)."""
        return f"{self.text} · report: {self.link}" if self.link and self.link not in self.text else self.text


class TemplateProblem(ValueError):
    """A template that does not compile or render; the text says which and why."""


def template_for(spec: Notifications, name: str, kind: str) -> MessageTemplate:
    """The plan's template ``name`` laid over the default of ``name`` (or of ``kind``, for an added one)."""
    base = DEFAULT_TEMPLATES.get(name) or DEFAULT_TEMPLATES[kind]
    override = spec.templates.get(name)
    if override is None:
        return base
    return MessageTemplate(
        text=override.text if override.text is not None else base.text,
        fields=override.fields if override.fields is not None else base.fields,
        severity=override.severity or base.severity,
    )


def render(template: MessageTemplate, kind: str, context: dict[str, Any], event: Envelope) -> Notice:
    """Render ``template`` with the run context; TemplateProblem if it fails."""
    try:
        text = _render(template.text or "", context)
        fields = tuple((title, value) for title, source in (template.fields or {}).items()
                       if (value := _render(source, context)))
    except Exception as exc:  # a template may fail any way Python can (1 / 0, None + 1): all are its problem
        raise TemplateProblem(_problem(exc)) from None
    return Notice(kind=kind, severity=template.severity or "info", text=text, fields=fields, event=event,
                  link=str(context.get("report_url") or ""))


def render_moment(spec: Notifications, name: str, kind: str, context: dict[str, Any], event: Envelope,
                  on_problem=None) -> Notice:
    """The plan's message for a moment; if the plan's template fails, the default one (``on_problem`` is told)."""
    try:
        return render(template_for(spec, name, kind), kind, context, event)
    except TemplateProblem as exc:
        if on_problem:
            on_problem(name, str(exc))
        return render(DEFAULT_TEMPLATES[kind], kind, context, event)


def _render(source: str, context: dict[str, Any]) -> str:
    return render_bounded(source, context)


def _problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):  # said plainly: Python's own words name no limit of ours
        return "RecursionError: cut off: the template recurses without end"
    return f"{type(exc).__name__}: {exc}"


# --- plan check ----------------------------------------------------------------------------------


def check_templates(spec: Notifications, line_of: Callable[[list], int | None] | None = None) -> list[str]:
    """Every problem in the plan's templates, each as ``notifications.templates.NAME.WHERE (line N): why``
    (the line when ``line_of`` maps a path to its line in the plan file).

    Each template is compiled and rendered against a full sample context of every kind it can serve, so a
    misspelt name, a filter that does not exist or a template over a limit is found here rather than at 02:00."""
    problems = []
    routed = {r.template: set(r.events) for r in spec.routes if r.template}
    for name, override in spec.templates.items():
        kinds = [name] if name in KINDS else sorted(routed.get(name, ())) or list(KINDS)
        for kind in kinds:
            template = template_for(spec, name, kind)
            parts = {"text": template.text or "", **{f"fields.{k}": v for k, v in (template.fields or {}).items()}}
            overridden = {"text"} if override.text is not None else set()
            overridden |= {f"fields.{k}" for k in (override.fields or {})}
            for where, source in parts.items():
                if where not in overridden:
                    continue
                try:
                    _render(source, sample_context(kind))
                except Exception as exc:  # noqa: BLE001 (a template may fail any way Python can)
                    loc = ["notifications", "templates", name, *where.split(".", 1)]
                    line = line_of(loc) if line_of else None
                    at = f" (line {line})" if line else ""
                    problem = f"notifications.templates.{name}.{where}{at}: {_problem(exc)}"
                    if problem not in problems:
                        problems.append(problem)
    return problems


def sample_context(kind: str) -> dict[str, Any]:
    """A context with every name filled in, as a run at a stage would have it (for checking templates)."""
    result = ProbeResult(
        step="stage1:hold", stage=1, probe="sample", label="stage 1 (10%)", passed=True, count=100, errors=0,
        p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, max_ms=4.0, summary="p95 2.00 <= 400 over 100 requests",
        verdicts=({"metric": "p95_ms", "limit": 400.0, "observed": 2.0, "passed": True},),
    )
    return {
        "run_id": "run-sample", "plan_name": "sample", "plan": {}, "environment": "Production",
        "maintenance_window": "02:00-04:00 UTC", "report_url": "https://example.invalid/report",
        "deploy_id": "dpl_new", "previous_deploy_id": "dpl_old", "phase": "canary", "step": "stage1:hold",
        "detail": "", "stage": {"number": 1, "weight": 10, "hold": 60.0, "thresholds": [{"p95_ms": 400.0}],
                                "checks": [result], "checks_text": result.text},
        "stages_total": 3, "weights": [10, 50, 100], "progress": "10% ✓ → 50% … → 100%", "results": [result],
        "failed_step": "stage1:hold", "failed_at": "stage 1 (10%): stage1:hold",
        "failed_checks": [result], "reason": "stage1:hold failed: p95 512.00 > 400", "undone": ["migrate"],
        "outcome": "rolled_back", "duration_s": 60.0, "duration": "60 seconds", "left_to_undo": [],
        "failed_where": "stage 1 (10%)", "why": "p95 512.00 > 400", "traffic_moved": True, "nothing_changed": False,
        "traffic_back": "traffic back on dpl_old, dpl_new read back at 0%", "breach_to_rollback": "1.2 s",
        "indexes": "kept idx_sample (rollback.drop_indexes: false)",
        "undone_text": "traffic back on dpl_old, dpl_new read back at 0%, 1.2 s after the breach was measured",
        "rollback_action": "Rollback to previous deployment dpl_old", "decided": "p95 512.00 > 400",
        "approvals": ["Confirm backup completion: approved by alice: “snapshot 42”"],
        "approvals_text": "Confirm backup completion: approved by alice: “snapshot 42”",
        "operator_actions": ["paused by bob at stage1:hold: checking the dashboard"],
        "operator_text": "paused by bob at stage1:hold: checking the dashboard",
        "event": {"id": "evt-sample", "type": f"golive.sample.{kind}.v1", "time": datetime.now(UTC).isoformat(),
                  "data": {}},
    }
