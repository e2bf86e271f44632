"""Contract test of the vercel provider against a local HTTP server implementing Vercel's documented REST API
(tests/traffic/fake_vercel.py: rolling releases, instant rollback, promote, deployments, and the documented
errors). We cannot run Vercel; this proves golive speaks the documented protocol, not that Vercel is up.
The full rolling-release flow, the rollback, 429 with Retry-After, 401, 404, 500 then success."""

from __future__ import annotations

import pytest

from golive.services.traffic.provider import (
    AuthError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    build_provider,
)
from golive.services.traffic.vercel import VercelProvider
from golive.shared.commands import ProviderSpec
from tests.traffic.fake_vercel import FakeVercel, Fault, Project

TOKEN = "vercel_tok_9f8e7d6c5b4a"


@pytest.fixture
def vercel(monkeypatch):
    monkeypatch.setenv("GOLIVE_TEST_VERCEL_TOKEN", TOKEN)
    fake = FakeVercel(TOKEN).start()
    fake.add_project(Project(id="prj_123", name="checkout", deployments=["dpl_old", "dpl_new"], production="dpl_old"))
    try:
        yield fake
    finally:
        fake.stop()


def provider(fake: FakeVercel, tmp_path, **extra) -> VercelProvider:
    spec = ProviderSpec(type="vercel", project="checkout", api_url=fake.url, token_env="GOLIVE_TEST_VERCEL_TOKEN", **extra)
    built = build_provider(spec, tmp_path)
    assert isinstance(built, VercelProvider)
    return built


def calls(fake: FakeVercel) -> list[str]:
    return [f"{method} {path}" for _, method, path in fake.requests]


async def test_full_rolling_release_flow_start_approve_complete(vercel, tmp_path):
    p = provider(vercel, tmp_path)

    who = await p.resolve(None, None)
    assert (who.production, who.previous, who.candidate) == ("dpl_old", "dpl_old", "dpl_new")
    observed = []
    for weight in (10, 50, 100):
        await p.set_weight("dpl_new", "dpl_old", weight)
        observed.append(await p.verify("dpl_new", weight))

    assert observed == [10, 50, 100]
    assert [c for c in calls(vercel) if c.startswith("POST")] == [
        "POST /v1/projects/checkout/rolling-release/start",
        "POST /v1/projects/checkout/rolling-release/approve-stage",
        "POST /v1/projects/checkout/rolling-release/complete",
    ]
    assert vercel.projects["checkout"].release["state"] == "COMPLETE"
    promoted = await p.resolve(None, None)
    assert (promoted.production, promoted.previous) == ("dpl_new", "dpl_old")
    assert all(h == f"Bearer {TOKEN}" for h in vercel.auth_headers)


async def test_rollback_is_an_instant_rollback_to_the_previous_deployment(vercel, tmp_path):
    p = provider(vercel, tmp_path)
    await p.set_weight("dpl_new", "dpl_old", 10)

    await p.rollback("dpl_new", None)  # no target given: the previous production deployment, as resolved

    assert "POST /v9/projects/checkout/rollback/dpl_old" in calls(vercel)
    assert vercel.projects["checkout"].release["state"] == "ABORTED"
    assert vercel.projects["checkout"].production == "dpl_old"
    assert await p.verify("dpl_new", 0) == 0


async def test_promote_completes_the_active_release(vercel, tmp_path):
    p = provider(vercel, tmp_path)
    await p.set_weight("dpl_new", "dpl_old", 10)

    await p.promote("dpl_new", "dpl_old")

    assert await p.weight("dpl_new") == 100 and vercel.projects["checkout"].production == "dpl_new"


async def test_rate_limit_is_retried_after_the_time_retry_after_asks_for(vercel, tmp_path):
    p = provider(vercel, tmp_path)
    vercel.fail_next = [Fault(429, {"Retry-After": "1"}, "rate_limited")]

    assert await p.weight("dpl_new") == 0

    (first, *_), (second, *_) = vercel.requests[0], vercel.requests[1]
    assert second - first >= 0.95  # a lower bound: it waited at least what Vercel asked for


async def test_rate_limit_longer_than_allowed_is_a_transient_error_with_the_wait(vercel, tmp_path):
    p = provider(vercel, tmp_path, max_retry_after_s=5)
    vercel.fail_next = [Fault(429, {"Retry-After": "60"}, "rate_limited")]

    with pytest.raises(RateLimitedError) as caught:
        await p.weight("dpl_new")

    assert caught.value.transient and caught.value.retry_after_s == 60
    assert len(vercel.requests) == 1


async def test_unavailable_with_a_retry_after_longer_than_allowed_is_not_waited_for(vercel, tmp_path):
    p = provider(vercel, tmp_path, max_retry_after_s=5)
    vercel.fail_next = [Fault(503, {"Retry-After": "3600"})]

    with pytest.raises(UnavailableError) as caught:
        await p.weight("dpl_new")

    assert caught.value.transient and caught.value.retry_after_s == 3600 and "Retry-After 3600 s" in str(caught.value)
    assert len(vercel.requests) == 1


async def test_server_error_then_success_is_retried(vercel, tmp_path):
    p = provider(vercel, tmp_path)
    vercel.fail_next = [Fault(500)]

    await p.set_weight("dpl_new", "dpl_old", 10)

    assert await p.weight("dpl_new") == 10
    assert calls(vercel)[:2] == ["GET /v1/projects/checkout/rolling-release"] * 2


async def test_server_errors_that_persist_are_transient_after_bounded_attempts(vercel, tmp_path):
    p = provider(vercel, tmp_path, max_attempts=3)
    vercel.fail_next = [Fault(503)] * 5

    with pytest.raises(UnavailableError) as caught:
        await p.weight("dpl_new")

    assert caught.value.transient and len(vercel.requests) == 3


async def test_wrong_token_is_an_auth_error_without_retry_and_without_the_token(vercel, tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_TEST_VERCEL_TOKEN", "vercel_tok_wrong_123456")
    p = provider(vercel, tmp_path)

    with pytest.raises(AuthError) as caught:
        await p.set_weight("dpl_new", "dpl_old", 10)

    assert not caught.value.transient and "401" in str(caught.value)
    assert "vercel_tok" not in str(caught.value) and "GOLIVE_TEST_VERCEL_TOKEN" in str(caught.value)
    assert len(vercel.requests) == 1


async def test_missing_token_names_the_variable_not_a_value(vercel, tmp_path, monkeypatch):
    monkeypatch.delenv("GOLIVE_TEST_VERCEL_TOKEN")
    p = provider(vercel, tmp_path)

    with pytest.raises(AuthError, match="GOLIVE_TEST_VERCEL_TOKEN"):
        await p.weight("dpl_new")
    assert vercel.requests == []


async def test_unknown_project_is_not_found(vercel, tmp_path):
    p = build_provider(ProviderSpec(type="vercel", project="nope", api_url=vercel.url,
                                    token_env="GOLIVE_TEST_VERCEL_TOKEN"), tmp_path)

    with pytest.raises(NotFoundError) as caught:
        await p.weight("dpl_new")

    assert not caught.value.transient and "404" in str(caught.value)


async def test_weight_that_is_not_a_configured_stage_is_a_conflict(vercel, tmp_path):
    p = provider(vercel, tmp_path)

    with pytest.raises(ConflictError, match=r"30% is not a stage .*\[10, 50, 100\]"):
        await p.set_weight("dpl_new", "dpl_old", 30)


async def test_shift_through_the_traffic_service_publishes_the_read_back_weight(vercel, settings, tmp_path):
    from golive.shared.commands import ShiftTraffic
    from golive.shared.events import TrafficShifted
    from tests.traffic.conftest import Conversation, started_traffic

    spec = ProviderSpec(type="vercel", project="checkout", api_url=vercel.url, token_env="GOLIVE_TEST_VERCEL_TOKEN")
    bus, _ = await started_traffic(settings)
    try:
        async with Conversation(settings, "run-vercel") as talk:
            await talk.send(ShiftTraffic(provider=spec, canary="dpl_new", stable="dpl_old", weight=10,
                                         expected_previous_weight=0), "run-vercel.1")
            answer = await talk.next()
    finally:
        await bus.stop()
    assert isinstance(answer.data, TrafficShifted)
    assert (answer.data.provider, answer.data.before, answer.data.after, answer.data.verified) == ("vercel", 0, 10, True)
