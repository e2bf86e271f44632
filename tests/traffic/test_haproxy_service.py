"""The traffic service on the real bus with the haproxy provider and a real HAProxy: a shift read back, a weight
changed by hand at the stats socket refused as traffic_drift (nothing changed), the rollback, and an unreachable
socket answered as a failing dependency (transient) whose reason names the socket and the bound; plus the
provider's settings, checked when the plan is loaded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from golive.services.traffic.provider import ProviderError, build_provider
from golive.shared.commands import ProviderSpec, RollbackTraffic, ShiftTraffic
from golive.shared.events import CommandFailed, TrafficDrift, TrafficRolledBack, TrafficShifted
from golive.shared.plan.traffic import HAProxySettings
from tests.traffic.conftest import Conversation, at_the_haproxy_socket, canary_share, haproxy_spec, traffic_service
from tests.traffic.haproxy_server import BACKEND


def shift(spec, weight: int, expected: int | None) -> ShiftTraffic:
    return ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=weight, expected_previous_weight=expected)


async def test_a_weight_set_by_hand_at_the_socket_is_refused_as_drift(settings, haproxy):
    spec = haproxy_spec(haproxy)
    async with traffic_service(settings):
        async with Conversation(settings, "run-hap-drift") as talk:
            first = await talk.ask(shift(spec, 10, 0), "run-hap-drift.1")
            await at_the_haproxy_socket(haproxy.socket, f"set server {BACKEND}/canary weight 30; "
                                                        f"set server {BACKEND}/stable weight 70")
            drift = await talk.ask(shift(spec, 50, 10), "run-hap-drift.2")
            rolled_back = await talk.ask(RollbackTraffic(provider=spec, canary="dpl_new", to="dpl_old"),
                                         "run-hap-drift.undo")
    assert isinstance(first.data, TrafficShifted) and (first.data.before, first.data.verified_weight) == (0, 10)
    assert isinstance(drift.data, TrafficDrift) and drift.data.provider == "haproxy"
    assert (drift.data.expected_weight, drift.data.observed_weight, drift.data.requested_weight) == (10, 30, 50)
    # the way back is always open: the rollback is never refused for drift, and is read back
    assert isinstance(rolled_back.data, TrafficRolledBack) and rolled_back.data.verified_weight == 0
    assert (await canary_share(haproxy.url, 100))[0] == 0.0


async def test_the_human_weight_stands_after_the_refused_shift(settings, haproxy):
    spec = haproxy_spec(haproxy)
    async with traffic_service(settings):
        async with Conversation(settings, "run-hap-stands") as talk:
            await talk.ask(shift(spec, 10, 0), "run-hap-stands.1")
            await at_the_haproxy_socket(haproxy.socket, f"set server {BACKEND}/canary state maint")
            drift = await talk.ask(shift(spec, 50, 10), "run-hap-stands.2")
    assert isinstance(drift.data, TrafficDrift) and drift.data.observed_weight == 0  # maintenance: no request
    state = await at_the_haproxy_socket(haproxy.socket, f"get weight {BACKEND}/canary")
    assert state.startswith("10 ")  # golive changed nothing after the human did


async def test_an_unreachable_socket_is_a_failing_dependency_with_its_bound(settings, tmp_path):
    spec = ProviderSpec(type="haproxy", socket=str(tmp_path / "nobody.sock"), backend=BACKEND, timeout_s=0.5)
    async with traffic_service(settings):
        async with Conversation(settings, "run-hap-gone") as talk:
            answer = await talk.ask(shift(spec, 10, 0), "run-hap-gone.1")
    assert isinstance(answer.data, CommandFailed) and answer.data.failure == "transient"
    assert f"haproxy runtime API at unix:{tmp_path / 'nobody.sock'} unreachable" in answer.data.reason


@pytest.mark.parametrize(("given", "problem"), [
    ({"backend": "be"}, "socket (a path) or its address (host:port), one of them"),
    ({"backend": "be", "socket": "/run/a.sock", "address": "127.0.0.1:9999"}, "one of them"),
    ({"socket": "/run/a.sock"}, "backend: Field required"),
    ({"socket": "/run/a.sock", "backend": "be; shutdown sessions server be/stable"}, "backend: String should match"),
    ({"socket": "relative.sock", "backend": "be"}, "socket: String should match"),
    ({"address": "127.0.0.1", "backend": "be"}, "address: String should match"),
    ({"socket": "/run/a.sock", "backend": "be", "canary_server": "stable"}, "two servers"),
    ({"socket": "/run/a.sock", "backend": "be", "admin_url": "x"}, "admin_url: Extra inputs are not permitted"),
    ({"socket": "/run/a.sock", "backend": "be", "timeout_s": 0}, "timeout_s: Input should be greater than 0"),
])
def test_haproxy_settings_are_checked_when_the_plan_is_loaded(given, problem):
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        ProviderSpec(type="haproxy", **given)


def test_haproxy_settings_name_the_runtime_api_and_no_default(tmp_path):
    spec = ProviderSpec(type="haproxy", address="[::1]:9999", backend="web")
    assert HAProxySettings.of(spec.model_extra or {}).host_port == ("::1", 9999)
    assert build_provider(spec, tmp_path).target("c", "s") == "haproxy tcp:[::1]:9999 backend web"
    with pytest.raises(ProviderError, match="haproxy provider"):
        build_provider(ProviderSpec.model_construct(type="haproxy", backend="web"), tmp_path)
