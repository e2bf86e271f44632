"""The Envoy configuration golive generates for a pair of backends (stable and canary), as a pure function.

One listener routes every request to two clusters with ``weighted_clusters``; the weights are runtime
keys (``<prefix>.stable``, ``<prefix>.canary``) so the admin interface can change them without a restart
and without dropping connections: a layered runtime with an admin layer, changed by
``POST /runtime_modify``. The weights in the file are only the start values; runtime overrides are lost
when Envoy restarts, which is why the envoy provider re-asserts the last weights it set.
"""

from __future__ import annotations

from typing import Any

DEFAULT_RUNTIME_PREFIX = "routing.canary"
STABLE, CANARY = "stable", "canary"


def runtime_keys(prefix: str = DEFAULT_RUNTIME_PREFIX) -> tuple[str, str]:
    """(stable key, canary key): Envoy reads ``<runtime_key_prefix>.<cluster name>``."""
    return f"{prefix}.{STABLE}", f"{prefix}.{CANARY}"


def _cluster(name: str, host: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }


def envoy_config(*, listen_port: int, admin_port: int, stable: tuple[str, int], canary: tuple[str, int],
                 canary_weight: int = 0, runtime_prefix: str = DEFAULT_RUNTIME_PREFIX,
                 listen_host: str = "127.0.0.1") -> dict[str, Any]:
    """Envoy's bootstrap for a proxy on ``listen_host:listen_port`` splitting traffic between ``stable`` and
    ``canary`` (host, port), ``canary_weight`` percent to the canary at start, admin on 127.0.0.1 only."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight {canary_weight} is not a percentage")
    stable_key, canary_key = runtime_keys(runtime_prefix)
    route = {
        "match": {"prefix": "/"},
        "route": {
            "weighted_clusters": {
                "runtime_key_prefix": runtime_prefix,
                "clusters": [
                    {"name": STABLE, "weight": 100 - canary_weight},
                    {"name": CANARY, "weight": canary_weight},
                ],
            },
            # a retry on a reset connection: a backend restarting must not fail a user's request
            "retry_policy": {"retry_on": "reset,connect-failure", "num_retries": 2},
        },
    }
    # per-deployment routes (Vercel's deployment URLs): /deployments/<name>/... reaches that deployment alone,
    # whatever the weights, so a plan can check the new deployment itself (`targets.deployment_url`)
    deployment_routes = [
        {"match": {"prefix": f"/deployments/{name}/"}, "route": {"cluster": name, "prefix_rewrite": "/"}}
        for name in (STABLE, CANARY)
    ]
    http_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "golive",
        "route_config": {"name": "golive", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [*deployment_routes, route]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "layered_runtime": {"layers": [
            # the start weights live in the static layer, so /runtime always shows both keys and a missing
            # admin value after a restart is visible as such
            {"name": "static", "static_layer": {stable_key: 100 - canary_weight, canary_key: canary_weight}},
            {"name": "admin", "admin_layer": {}},
        ]},
        "static_resources": {
            "listeners": [{
                "name": "golive",
                "address": {"socket_address": {"address": listen_host, "port_value": listen_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": http_manager}]}],
            }],
            "clusters": [_cluster(STABLE, *stable), _cluster(CANARY, *canary)],
        },
    }
