"""Parts from another package (tests/plugins/golive_example_plugins, installed by pip as another team would install
theirs): its traffic provider is found through the entry-point group golive.traffic_providers and used by the traffic
service on the real bus (a shift lands in its file and is read back through it); its notification sink is found
through golive.sinks by the notifier's registry. A built-in name cannot be taken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from golive.services.traffic.provider import PROVIDERS, known_providers
from golive.shared.commands import ProviderSpec, ShiftTraffic
from golive.shared.events import TrafficShifted
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
