"""Parts other packages add to golive through entry points, beside the built-in ones.

A package adds a traffic provider, a notification sink or a probe kind by declaring it in its own pyproject.toml:

    [project.entry-points."golive.traffic_providers"]
    my-proxy = "my_package.proxy:MyProxyProvider"

Groups:
- ``golive.traffic_providers``: a class with the TrafficProvider protocol and ``from_spec``;
- ``golive.sinks``: a class with the Sink protocol;
- ``golive.probe_kinds``: a ``ProbeKind`` (golive.shared.plan.probes.base) naming the kind's plan model, its spec and
  the prober's target for it. Kinds are read when the plan models are built (the first import of
  golive.shared.plan.probes), so every service and the CLI know the same kinds; a kind that cannot be loaded stops
  that import with PluginError, naming the entry point (never a plan that fails later for an unknown kind). So the
  module the entry point names imports only golive.shared.plan.probes.base from golive, and its target's module is
  imported by the prober on first use (tests/plugins/golive_example_plugins/golive_example_probe.py).

A built-in name always wins: an installed package cannot replace golive's own `envoy`, `slack` or `sql`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

TRAFFIC_PROVIDERS = "golive.traffic_providers"
SINKS = "golive.sinks"
PROBE_KINDS = "golive.probe_kinds"


class PluginError(RuntimeError):
    """An installed package's entry point that golive cannot use: which one, and why."""


def installed_plugins(group: str) -> dict[str, str]:
    """name -> "module:attribute" of every entry point installed packages declare in ``group``."""
    return {point.name: point.value for point in entry_points(group=group)}


def with_plugins(group: str, builtins: dict[str, str]) -> dict[str, str]:
    """The built-in registrations and the installed packages' ones of ``group``; a built-in name wins."""
    return {**installed_plugins(group), **builtins}


def load_reference(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names (an entry point's value), imported on this call."""
    module, _, attribute = reference.partition(":")
    found: Any = importlib.import_module(module)
    for name in filter(None, attribute.split(".")):
        found = getattr(found, name)
    return found
