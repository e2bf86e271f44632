"""Parts from another package (tests/plugins/golive_example_plugins, installed by pip as another team would install
theirs): its traffic provider is found through the entry-point group golive.traffic_providers and used by the traffic
service on the real bus (a shift lands in its file and is read back through it); its notification sink is found
through golive.sinks by the notifier's registry; its probe kind (example-tcp) is found through golive.probe_kinds,
is part of the plan model, and a whole run on the five services checks through it. A built-in name cannot be taken,
and a kind that cannot be loaded is an error naming its entry point."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from golive.services.traffic.provider import PROVIDERS, known_providers
from golive.shared.commands import ProviderSpec, ShiftTraffic
from golive.shared.events import ProbeCompleted, ProbesCompleted, TrafficShifted
from golive.shared.subjects import SERVICES
from golive.stack.service_processes import ServiceProcesses, wait_until_ready
from tests.builders import skeleton_plan
from tests.e2e.run_outcome import run_events
from tests.harness import REPO
from tests.traffic.conftest import Conversation, traffic_service

PLUGIN = REPO / "tests" / "plugins" / "golive_example_plugins"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A folder the example provider's package is installed into (its module and dist-info with entry points)."""
    site = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-build")
    source = shutil.copytree(PLUGIN, build / "src", ignore=shutil.ignore_patterns("__pycache__"))  # built there: the tree stays clean
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300, cwd=build, env={"PATH": "/usr/bin:/bin", "HOME": str(build)})
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert list(site.glob("golive_example_plugins-*.dist-info/entry_points.txt"))
    return site


def test_the_installed_provider_is_known_and_a_built_in_name_stays_golives(plugin_site, monkeypatch):
    assert "example-file" not in known_providers()  # not installed: not found
    monkeypatch.syspath_prepend(str(plugin_site))
    known = known_providers()
    assert known["example-file"] == "golive_example_plugins:ExampleFileProvider"
    assert known["envoy"] == PROVIDERS["envoy"]  # the package also declares `envoy`: golive's own wins


async def test_the_traffic_service_shifts_through_the_installed_provider(settings, plugin_site, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(plugin_site))
    state = tmp_path / "weights.json"
    spec = ProviderSpec(type="example-file", state_file=str(state))
    async with traffic_service(settings):
        async with Conversation(settings, "run-plugin") as talk:
            answer = await talk.ask(ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=10,
                                                 expected_previous_weight=0), "run-plugin.1")
    assert isinstance(answer.data, TrafficShifted), answer.data
    assert (answer.data.before, answer.data.after, answer.data.verified) == (0, 10, True)
    assert json.loads(state.read_text()) == {"dpl_new": 10, "by": "example-file"}


def test_the_installed_sink_is_found_and_a_built_in_name_stays_golives(plugin_site, tmp_path):
    # a fresh interpreter: the notifier's registry reads its sinks once per process
    probe = ("from golive.services.notifier.sinks import known_types, sink_for\n"
             "from golive.shared.plan.notifications import NotificationSink\n"
             "sink = lambda kind: type(sink_for(NotificationSink(type=kind, webhook_url_env='CHAT_URL')))\n"
             "print(known_types(), sink('example-chat').__module__, sink('slack').__module__)")
    for path, expected in ((None, "['slack', 'webhook']"),
                           (plugin_site, "['example-chat', 'slack', 'webhook'] golive_example_plugins "
                                         "golive.services.notifier.sinks.slack")):
        code = probe if path else probe.replace("sink('example-chat').__module__, sink('slack').__module__", "")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **({"PYTHONPATH": str(path)} if path else {})}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip() == expected


def _fresh_python(code: str, cwd, site=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (entry points are read once per process), with ``site`` on its path."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **({"PYTHONPATH": str(site)} if site else {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


KINDS_AND_A_PLAN = """
from golive.shared.plan import parse_plan
from golive.shared.plan.probes import KINDS
plan = parse_plan("name: p\\ndatabase: {url_env: DB}\\nprobes:\\n  port: {kind: example-tcp, address_env: ADDR}\\n"
                  "canary: {stages: [{weight: 100, hold: 1s, checks: [{probe: port}]}]}\\n")
print(sorted(KINDS), KINDS["sql"].probe.__module__, type(plan.probes["port"]).__module__)
"""


def test_an_installed_probe_kind_is_part_of_the_plan_model_and_sql_stays_golives(plugin_site, tmp_path):
    without = _fresh_python(KINDS_AND_A_PLAN, tmp_path)
    assert without.returncode != 0 and "a probe's kind is one of sql, http, pg_health, prometheus" in without.stderr
    installed = _fresh_python(KINDS_AND_A_PLAN, tmp_path, plugin_site)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert installed.stdout.split() == ["['example-tcp',", "'http',", "'pg_health',", "'prometheus',", "'sql']",
                                        "golive.shared.plan.probes.sql", "golive_example_probe"]


def test_a_probe_kind_that_cannot_be_loaded_is_an_error_naming_its_entry_point(tmp_path):
    site = tmp_path / "site"
    dist = site / "golive_broken_kind-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: golive-broken-kind\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[golive.probe_kinds]\nbroken = golive_no_such_module:KIND\n")
    done = _fresh_python("import golive.shared.plan.probes", tmp_path, site)
    assert done.returncode != 0
    assert ("PluginError: entry point golive.probe_kinds 'broken' = 'golive_no_such_module:KIND' could not be loaded: "
            "ModuleNotFoundError") in done.stderr, done.stderr[-3000:]


def _accept_and_close(listener: socket.socket) -> None:
    """A TCP port that takes every connection and closes it at once."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connection.close()


@pytest.mark.e2e
def test_a_run_checks_through_an_installed_probe_kind(plugin_site, settings, process_env, tmp_path, monkeypatch):
    """The smoke test and every stage of a run on the five services check a TCP port through example-tcp: the
    coordinator builds its spec from the plan, the prober loads its target from the other package."""
    def through_the_port(plan: dict) -> None:
        plan["probes"]["port"] = {"kind": "example-tcp", "address_env": "EXAMPLE_ADDRESS"}
        for check in plan["smoke"] + [c for stage in plan["canary"]["stages"] for c in stage["checks"]]:
            check["probe"] = "port"

    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    accepting = threading.Thread(target=_accept_and_close, args=(listener,), daemon=True)
    accepting.start()
    env = {**process_env, "PYTHONPATH": str(plugin_site), "EXAMPLE_ADDRESS": f"127.0.0.1:{listener.getsockname()[1]}"}
    monkeypatch.setattr(ServiceProcesses, "launch", subprocess.Popen)  # fresh interpreters: they read entry points
    procs = ServiceProcesses(env, tmp_path / "logs").start()
    try:
        asyncio.run(wait_until_ready(settings, SERVICES, procs))
        result = subprocess.run([sys.executable, "-m", "golive", "run", str(skeleton_plan(tmp_path, edit=through_the_port)),
                                 "--run-id", "run-plugin-kind"], env=env, cwd=REPO, capture_output=True, text=True,
                                timeout=120)
    finally:
        procs.stop()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, which ends on the error
        listener.close()
        accepting.join(5)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    answers = [e.data for e in run_events(settings, "run-plugin-kind")]
    checked = [one for a in answers if isinstance(a, ProbeCompleted | ProbesCompleted)
               for one in (a.results if isinstance(a, ProbesCompleted) else [a])]
    assert len(checked) == 4 and all(c.probe == "port" and c.count > 0 and c.errors == 0 for c in checked), checked
