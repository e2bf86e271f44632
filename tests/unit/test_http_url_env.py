"""An http probe's address from the environment: `${GOLIVE_APP_URL}/api/health` is filled where the prober runs."""

from __future__ import annotations

import pytest

from golive.services.prober.http_probe import HttpTarget
from golive.services.prober.kinds import ProbeSetupError
from golive.shared.commands import HttpProbeSpec


def test_the_base_of_an_http_probe_url_comes_from_the_variable_it_names():
    spec = HttpProbeSpec(name="app_health", url="${GOLIVE_APP_URL}/deployments/canary/api/health")
    target = HttpTarget.from_spec(spec, {"GOLIVE_APP_URL": "http://127.0.0.1:8080/"})
    assert target.spec.url == "http://127.0.0.1:8080/deployments/canary/api/health"


def test_an_unset_variable_is_a_setup_error_that_names_it():
    spec = HttpProbeSpec(name="app_health", url="${GOLIVE_APP_URL}/api/health")
    with pytest.raises(ProbeSetupError, match="GOLIVE_APP_URL is not set"):
        HttpTarget.from_spec(spec, {})


def test_a_url_is_either_http_or_starts_with_a_variable():
    with pytest.raises(ValueError):
        HttpProbeSpec(name="app_health", url="$GOLIVE_APP_URL/api/health")
