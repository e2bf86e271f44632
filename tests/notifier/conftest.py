"""Notifier processes on the real broker, posting to the real local webhook receiver (the `webhook` fixture)."""

from __future__ import annotations

import pytest

from golive.stack.service_processes import WEBHOOK_ENV, ServiceProcesses, service_env


@pytest.fixture
def notifier_env(settings, webhook) -> dict[str, str]:
    return service_env(settings.resolved_nats_url(), settings.state_dir, {
        "GOLIVE_SUBJECT_ROOT": settings.subject_root, WEBHOOK_ENV: webhook.url,
    })


@pytest.fixture
def notifiers(notifier_env, tmp_path, request):
    """Notifier processes this test starts; all stopped at the end, also on failure (then their logs are printed)."""
    procs = ServiceProcesses(notifier_env, tmp_path / "logs")
    yield procs
    procs.stop()
    if getattr(getattr(request.node, "report_call", None), "failed", False):
        for log in sorted((tmp_path / "logs").glob("*.log")):
            print(f"----- {log.name} -----\n" + "\n".join(log.read_text().splitlines()[-60:]))
