"""The haproxy provider through a real HAProxy (Debian's package) in front of two real local backends: weights set
through the runtime API and read back, the split real requests see, what HAProxy applies (a human's weight, a
server in maintenance), HAProxy's refusals as typed errors, and an unreachable or silent socket as a bounded,
transient failure."""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path

import pytest

from golive.services.traffic.haproxy import HAProxyProvider
from golive.services.traffic.haproxy_runtime import servers_state, set_weights_line
from golive.services.traffic.provider import ConflictError, NotFoundError, UnavailableError, build_provider
from golive.shared.commands import ProviderSpec
from tests.traffic.conftest import at_the_haproxy_socket, canary_share, haproxy_spec
from tests.traffic.haproxy_server import BACKEND, HOW_TO_GET_IT, EmbeddedHAProxy, haproxy_binary

REQUESTS_PER_WEIGHT = 1_000
SIGMAS = 4  # a binomial tolerance: 4 sigma of the share over REQUESTS_PER_WEIGHT (6.3 points at 50%, 0 at 100%)


def provider_for(spec: ProviderSpec, tmp_path) -> HAProxyProvider:
    provider = build_provider(spec, tmp_path / "state")
    assert isinstance(provider, HAProxyProvider)
    return provider


async def weights_in_haproxy(socket) -> dict[str, int]:
    """The runtime weights HAProxy holds, read by hand at its socket (not through the provider)."""
    servers = servers_state(await at_the_haproxy_socket(socket, f"show servers state {BACKEND}"), BACKEND)
    return {name: server.uweight for name, server in servers.items()}


async def test_weights_set_read_back_and_split_real_requests_at_10_50_100(haproxy, tmp_path):
    provider = provider_for(haproxy_spec(haproxy), tmp_path)
    observed: dict[int, float] = {}
    for weight in (10, 50, 100):
        await provider.set_weight("dpl_new", "dpl_old", weight)
        assert await provider.verify("dpl_new", weight) == weight
        assert await weights_in_haproxy(haproxy.socket) == {"stable": 100 - weight, "canary": weight}
        share, seen = await canary_share(haproxy.url, REQUESTS_PER_WEIGHT)
        assert sum(seen.values()) == REQUESTS_PER_WEIGHT and set(seen) <= {"stable", "canary"}, seen
        observed[weight] = share
    print(f"haproxy: observed canary share over {REQUESTS_PER_WEIGHT} requests each: {observed}")
    for weight, share in observed.items():
        p = weight / 100
        tolerance = 100 * SIGMAS * math.sqrt(p * (1 - p) / REQUESTS_PER_WEIGHT)
        assert abs(share - weight) <= tolerance, (weight, share, tolerance)


async def test_rollback_and_promote_are_read_back_and_followed_by_requests(haproxy, tmp_path):
    provider = provider_for(haproxy_spec(haproxy), tmp_path)
    await provider.set_weight("dpl_new", "dpl_old", 50)
    await provider.rollback("dpl_new", "dpl_old")
    assert await provider.verify("dpl_new", 0) == 0
    assert (await canary_share(haproxy.url, 100))[0] == 0.0
    await provider.promote("dpl_new", "dpl_old")
    assert await provider.verify("dpl_new", 100) == 100
    assert (await canary_share(haproxy.url, 100))[0] == 100.0


async def test_the_runtime_api_on_tcp_works_as_on_the_unix_socket(haproxy, tmp_path):
    spec = ProviderSpec(type="haproxy", address=f"127.0.0.1:{haproxy.admin_port}", backend=BACKEND)
    provider = provider_for(spec, tmp_path)
    await provider.set_weight("dpl_new", "dpl_old", 10)
    assert await provider.verify("dpl_new", 10) == 10
    assert await weights_in_haproxy(haproxy.socket) == {"stable": 90, "canary": 10}
    assert provider.target("dpl_new", "dpl_old") == f"haproxy tcp:127.0.0.1:{haproxy.admin_port} backend {BACKEND}"


async def test_weight_reads_back_what_haproxy_applies_not_what_golive_set(haproxy, tmp_path):
    provider = provider_for(haproxy_spec(haproxy), tmp_path)
    await provider.set_weight("dpl_new", "dpl_old", 10)

    # someone at the socket: 30% by hand (weights that need not add up to 100)
    await at_the_haproxy_socket(haproxy.socket, f"set server {BACKEND}/canary weight 60; "
                                                f"set server {BACKEND}/stable weight 140")
    assert await provider.weight("dpl_new") == 30

    # the canary in maintenance gets no request whatever its weight: that is what is read back
    await at_the_haproxy_socket(haproxy.socket, f"set server {BACKEND}/canary state maint")
    assert await provider.weight("dpl_new") == 0
    assert (await canary_share(haproxy.url, 50))[0] == 0.0


def test_weights_are_set_largest_first_so_no_instant_has_both_servers_at_zero():
    assert set_weights_line("be", {"stable": 0, "canary": 100}) == (
        "set server be/canary weight 100; set server be/stable weight 0")
    assert set_weights_line("be", {"stable": 100, "canary": 0}) == (
        "set server be/stable weight 100; set server be/canary weight 0")
    assert set_weights_line("be", {"stable": 90, "canary": 10}).startswith("set server be/stable weight 90;")


async def test_haproxy_refusals_are_typed_errors_with_its_reason(haproxy, tmp_path):
    with pytest.raises(NotFoundError, match="no backend 'nope'"):
        await provider_for(ProviderSpec(type="haproxy", socket=str(haproxy.socket), backend="nope"), tmp_path).weight("c")
    with pytest.raises(NotFoundError, match="No such backend"):
        await provider_for(ProviderSpec(type="haproxy", socket=str(haproxy.socket), backend="nope"),
                           tmp_path).set_weight("c", "s", 10)
    wrong_server = provider_for(haproxy_spec(haproxy, canary_server="green"), tmp_path)
    with pytest.raises(NotFoundError, match="no server 'green'"):
        await wrong_server.weight("c")
    with pytest.raises(NotFoundError, match="No such server"):
        await wrong_server.set_weight("c", "s", 10)


async def test_a_static_balance_algorithm_refuses_weights_as_a_conflict(backends, tmp_path):
    if haproxy_binary() is None:
        pytest.fail(HOW_TO_GET_IT)
    stable, canary = backends
    with EmbeddedHAProxy(stable.address, canary.address, balance="static-rr") as static:
        provider = provider_for(haproxy_spec(static), tmp_path)
        with pytest.raises(ConflictError, match="static LB algorithm") as caught:
            await provider.set_weight("dpl_new", "dpl_old", 10)
    assert not caught.value.transient


async def test_a_missing_socket_is_a_transient_unavailable_dependency(tmp_path):
    missing = Path(tempfile.mkdtemp(prefix="golive-haproxy-")) / "gone.sock"
    provider = provider_for(ProviderSpec(type="haproxy", socket=str(missing), backend=BACKEND), tmp_path)
    with pytest.raises(UnavailableError, match=f"unix:{missing} unreachable: FileNotFoundError") as caught:
        await provider.weight("dpl_new")
    assert caught.value.transient
    missing.parent.rmdir()


async def test_a_socket_that_never_answers_fails_within_the_bound(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="golive-haproxy-"))
    silent = folder / "silent.sock"
    accepted = asyncio.Event()

    async def hold_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # reads the command, never answers

    server = await asyncio.start_unix_server(hold_open, str(silent))
    try:
        spec = ProviderSpec(type="haproxy", socket=str(silent), backend=BACKEND, timeout_s=0.3)
        with pytest.raises(UnavailableError, match="gave no full answer within 0.3 s") as caught:
            await provider_for(spec, tmp_path).set_weight("dpl_new", "dpl_old", 10)
    finally:
        server.close()
        await server.wait_closed()
        silent.unlink(missing_ok=True)
        folder.rmdir()
    assert caught.value.transient and accepted.is_set()
