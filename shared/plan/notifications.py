"""The plan's communication plan (``notifications``): sinks, routes, templates and the words the runbook's messages
use. The notifier reads it from the run's plan (RunStarted); `golive plan check` renders its templates."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from golive.shared.plan.base import MAX_ITEMS, Strict
from golive.shared.secrets import EnvName, PlainUrl, check_extras

NotificationKind = Literal[
    "run_started", "phase_started", "stage_passed", "rollback_started", "run_succeeded", "run_rolled_back",
    "needs_human", "watch_breached", "watch_summary", "run_paused",
]
DEFAULT_NOTIFICATION_KINDS: tuple[NotificationKind, ...] = (
    "run_started", "stage_passed", "run_succeeded", "rollback_started", "run_rolled_back", "needs_human",
    "run_paused",  # golive paused the run itself: a stage's hold was inconclusive (analysis.inconclusive: pause)
    "watch_breached",  # the post-deploy watch (plan post_deploy): a check breached after the go-live
)
# what ``on`` accepts: the kinds, and the first plans' names for the runbook's three messages
OnKind = Literal[
    "run_started", "phase_started", "stage_passed", "rollback_started", "run_succeeded", "run_rolled_back",
    "needs_human", "watch_breached", "watch_summary", "run_paused", "start", "success", "rollback",
]
# the first plans' names for the runbook's messages, still accepted in ``on``
LEGACY_NOTIFICATION_KINDS: dict[str, tuple[str, ...]] = {
    "start": ("run_started",), "success": ("run_succeeded",), "rollback": ("rollback_started", "run_rolled_back"),
}
Severity = Literal["info", "success", "warning", "danger", "critical"]
SEVERITY_ORDER: tuple[str, ...] = ("info", "success", "warning", "danger", "critical")


class NotificationSink(Strict):
    """Where messages go. ``type`` picks the sink module (slack, webhook, ...); sink-specific settings (Slack's
    ``format: attachments|blocks``) ride along. The URL is a secret: only the variable's name is here."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)
    type: str = "slack"
    # a name, not a URL: a URL pasted here would put the secret in the plan (and in RunStarted)
    webhook_url_env: EnvName = Field(description="environment variable holding the webhook URL (never the URL)")
    attempts: int = Field(default=5, ge=1, le=20, description="posts before giving up")
    timeout_s: float = Field(default=5.0, gt=0, le=300, description="how long one post may take")
    give_up_after_s: float = Field(default=120.0, gt=0, description="bound on all attempts and their waits")

    @model_validator(mode="after")
    def _secrets_by_name(self) -> NotificationSink:
        check_extras(self.model_extra or {})
        return self


class NotificationRoute(Strict):
    """Which kinds of moment go to which sinks (none named: all), from which severity up, with which template."""

    events: list[NotificationKind] = Field(min_length=1)
    sinks: list[str] = []
    min_severity: Severity = "info"
    template: str | None = Field(default=None, description="a template name; default: the kind's own")


class MessageTemplate(Strict):
    """A message as Jinja2 templates. Keys left out keep the default template's."""

    text: str | None = None
    fields: dict[str, str] | None = None
    severity: Severity | None = None


class Notifications(Strict):
    """The communication plan: sinks, routes, templates and the words the runbook's messages use."""

    # bounded like every list of a plan (MAX_ITEMS): a plan file is checked, then held and sent whole
    sinks: dict[str, NotificationSink] = Field(default={}, max_length=MAX_ITEMS)
    on: list[OnKind] = list[OnKind](DEFAULT_NOTIFICATION_KINDS)
    routes: list[NotificationRoute] = Field(default=[], max_length=MAX_ITEMS,
                                            description="default: every kind in `on` to every sink")
    templates: dict[str, MessageTemplate] = Field(default={}, max_length=MAX_ITEMS)
    environment: str = "Production"
    maintenance_window: str = ""
    report_url: PlainUrl = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        # YAML 1.1 (PyYAML) reads an unquoted ``on:`` key as the boolean True
        if any(k is True for k in data) and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        # ``slack: {webhook_url_env: ...}`` is a sink named slack
        if "slack" in data:
            data = dict(data)
            slack = data.pop("slack")
            if slack is not None:
                data["sinks"] = {"slack": {"type": "slack", **slack}, **(data.get("sinks") or {})}
        return data

    @model_validator(mode="after")
    def _routes_name_known_sinks_and_templates(self) -> Notifications:
        for i, route in enumerate(self.routes):
            unknown = [s for s in route.sinks if s not in self.sinks]
            if unknown:
                known = ", ".join(sorted(self.sinks)) or "none"
                raise ValueError(f"routes[{i}] names sink(s) {', '.join(unknown)} that are not defined (sinks: {known})")
            if route.template and route.template not in self.templates and route.template not in get_args(NotificationKind):
                raise ValueError(f"routes[{i}] names template {route.template!r}, which is neither in templates nor a kind")
        return self

    def kinds_on(self) -> set[str]:
        """The kinds ``on`` selects, legacy names expanded."""
        kinds: set[str] = set()
        for kind in self.on:
            kinds.update(LEGACY_NOTIFICATION_KINDS.get(kind, (kind,)))
        return kinds
