"""Parts other packages add to golive through entry points, beside the built-in ones.

A package adds a traffic provider, a notification sink or a probe kind by declaring it in its own pyproject.toml:

    [project.entry-points."golive.traffic_providers"]
    my-proxy = "my_package.proxy:MyProxyProvider"

Groups: ``golive.traffic_providers`` (a class with the TrafficProvider protocol and ``from_spec``) and
``golive.sinks`` (a class with the Sink protocol). A built-in name always wins: an installed package cannot replace
golive's own `envoy` or `slack`. Probe kinds are not pluggable yet (their models make the plan's and the commands'
schemas at import: shared/plan/probes/).
"""

from __future__ import annotations

from importlib.metadata import entry_points

TRAFFIC_PROVIDERS = "golive.traffic_providers"
SINKS = "golive.sinks"


def installed_plugins(group: str) -> dict[str, str]:
    """name -> "module:attribute" of every entry point installed packages declare in ``group``."""
    return {point.name: point.value for point in entry_points(group=group)}


def with_plugins(group: str, builtins: dict[str, str]) -> dict[str, str]:
    """The built-in registrations and the installed packages' ones of ``group``; a built-in name wins."""
    return {**installed_plugins(group), **builtins}
