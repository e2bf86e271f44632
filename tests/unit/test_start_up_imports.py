"""What a process loads as it starts: each is paid at every start (a test stack starts five services, and a
coordinator that ends a run starts a chart worker), so a process loads what it uses and not the rest."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO

SERVICE_MODULES = {name: f"golive.services.{name}.service" for name in ("coordinator", "migrator", "prober", "traffic", "notifier")}


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_service_process_loads_its_own_service_and_not_the_other_four():
    loaded = loaded_after("from golive.serve import build_service\nfrom golive.shared.settings import Settings\n"
                          "build_service('traffic', Settings(nats_url='nats://127.0.0.1:1'))")
    assert SERVICE_MODULES["traffic"] in loaded
    assert not {module for name, module in SERVICE_MODULES.items() if name != "traffic"} & loaded


def test_the_chart_worker_loads_the_report_and_not_the_bus():
    # a spawned worker imports the module of each function it is handed: its initializer and the drawing
    from golive.services.coordinator import reports

    handed = {reports.die_with_parent.__module__, reports.write_report_pages.__module__}
    loaded = loaded_after("\n".join(f"import {module}" for module in sorted(handed)))
    assert "golive.services.coordinator.artifacts" in loaded
    assert not {"golive.shared.bus", "faststream", "golive.services.coordinator.service"} & loaded, sorted(handed)
