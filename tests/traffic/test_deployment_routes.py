"""Envoy's per-deployment routes (`targets.deployment_url`): /deployments/<name>/... reaches that deployment
alone, whatever the weights (that the prefix is taken off shows in tests/e2e: the demo app answers /api/... only)."""

from __future__ import annotations

import httpx


def test_a_deployment_route_reaches_its_deployment_whatever_the_weights(envoy):
    with httpx.Client(base_url=envoy.url, trust_env=False) as client:
        # canary weight 0: the listener sends everything to stable, yet the canary's own URL reaches the canary
        assert {client.get("/api/health").headers["X-Backend"] for _ in range(20)} == {"stable"}
        canary = client.get("/deployments/canary/api/health")
        stable = client.get("/deployments/stable/api/health")
    assert (canary.status_code, canary.headers["X-Backend"], canary.text) == (200, "canary", "canary")
    assert (stable.status_code, stable.headers["X-Backend"]) == (200, "stable")
