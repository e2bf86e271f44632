"""A hostile template that reaches the notifier straight from the bus (never checked by `golive plan check`) is
cut off: the message goes out with the default text, the problem is logged, and other runs get their messages
(issue 12, finding 5)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from tests.harness import REPO
from tests.notifier.notifier_io import publish, sent, wait_for_event
from tests.notifier.run_events import RunLog, plan_dict
from tests.security.template_bombs import TEMPLATE_BOMBS

RENDER_ALL = """
import json, sys
from golive.services.notifier.templates import render_moment, sample_context
from golive.shared.plan.notifications import Notifications
from golive.shared.envelope import new_envelope
from golive.shared.events import RunStarted

event = new_envelope(RunStarted(plan={}, plan_name="sample", deploy_id="dpl_new"), source="/golive/coordinator",
                     subject="golive.evt.run-x.coordinator.run_started", runid="run-x", id="evt-x")
out = {}
for name, source in json.loads(sys.stdin.read()).items():
    problems = []
    spec = Notifications(templates={"run_started": {"text": source}})
    notice = render_moment(spec, "run_started", "run_started", sample_context("run_started"), event,
                           lambda _name, problem: problems.append(problem))
    out[name] = {"text": notice.text, "problems": problems}
print(json.dumps(out))
"""


def _limits() -> None:
    # the code before the fix must die here, not hang the suite or eat a shared machine
    resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.timeout(120)
def test_every_hostile_template_given_to_the_renderer_is_cut_off_and_the_default_message_goes_out():
    result = subprocess.run([sys.executable, "-c", RENDER_ALL], input=json.dumps(TEMPLATE_BOMBS), cwd=REPO,
                            capture_output=True, text=True, preexec_fn=_limits)
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = json.loads(result.stdout)
    assert set(rendered) == set(TEMPLATE_BOMBS)
    for name, got in rendered.items():
        assert got["text"] == "🚀 Starting sample Production Deployment", name
        assert len(got["problems"]) == 1, (name, got)
        assert any(w in got["problems"][0] for w in ("cut off", "at most", "over 100,000", "bits")), (name, got)


@pytest.mark.timeout(180)
async def test_a_hostile_template_on_the_bus_is_cut_off_and_the_next_run_still_gets_its_messages(
    settings, webhook, notifiers  # noqa: F811
):
    from golive.stack.service_processes import wait_until_ready

    hostile = RunLog(run_id="run-hostile", root=settings.subject_root,
                     plan=plan_dict(templates={"run_started": {"text": TEMPLATE_BOMBS["nested_range"]}})).start()
    normal = RunLog(run_id="run-normal", root=settings.subject_root).start()
    notifiers.start_one("notifier")
    await wait_until_ready(settings, ["notifier"], notifiers)

    await publish(settings, *hostile.events, *normal.events)
    told = await wait_for_event(settings, normal.run_id, sent("run_started"), timeout_s=60)
    cut = await wait_for_event(settings, hostile.run_id, sent("run_started"), timeout_s=60)

    assert told.data.text == cut.data.text == "🚀 Starting skeleton Production Deployment"
    log = (notifiers.log_dir / "notifier.log").read_text()
    assert "notification.template_failed" in log and "cut off" in log
    assert webhook.texts() == ["🚀 Starting skeleton Production Deployment"] * 2
