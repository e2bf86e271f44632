"""Production traffic judged by deployment: the real demo app's stable and canary behind a real Envoy splitting the
production address 90/10, one http check on that address, each answer charged to the deployment its
x-golive-deployment header names, and the canary's answers judged against stable's within the one stream. A canary
that fails half its requests (5% of production traffic) or answers 600 ms late is caught through the alias, with
its numbers, before the hold ends; a healthy canary passes."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from golive.demo.app import DemoApp
from golive.services.prober.run import run_probe
from golive.shared.commands import HttpProbeSpec, LoadSpec, RunProbe, SplitTraffic, Thresholds
from golive.stack.envoy_proxy import EmbeddedEnvoy
from tests.conftest import cloned_database

pytestmark = pytest.mark.timeout(180)

# the runbook's stage 1 on production traffic: P95 < 400 ms, errors < 1%, canary p95 at most 50 ms worse than stable
RUNBOOK = Thresholds(p95_ms=400, error_rate_pct=1.0, min_samples=20, p95_increase_ms=50)
HOLD_S = 60.0


@pytest.fixture(scope="module")
def alias(postgres_admin_url):
    """Stable and canary demo apps behind Envoy with 10% of the production address's traffic on the canary."""
    root = Path(tempfile.mkdtemp(prefix="golive-alias-"))
    with cloned_database(postgres_admin_url) as database, DemoApp("stable", database, root / "logs") as stable, \
            DemoApp("canary", database, root / "logs") as canary, \
            EmbeddedEnvoy(root / "envoy", stable.address, canary.address, canary_weight=10) as envoy:
        yield envoy, stable, canary


def production_check(envoy: EmbeddedEnvoy, duration_s: float = HOLD_S, thresholds: Thresholds = RUNBOOK) -> RunProbe:
    """The stage's check on the production address, as the coordinator sends it for a plan with a baseline."""
    return RunProbe(probe=HttpProbeSpec(name="production_api", url=f"{envoy.url}/api/health"),
                    split=SplitTraffic(canary="canary", stable="stable"), duration_s=duration_s,
                    load=LoadSpec(mode="open", rate=50, warmup_s=0.5), concurrency=8, thresholds=thresholds)


@pytest.mark.timing  # latencies measured in real time decide the healthy case (canary within 50 ms of stable)
@pytest.mark.parametrize("mode, why", [
    ("errors", r"canary error rate (\d+\.\d)% vs stable 0\.0%"),
    ("latency", r"canary p95 (\d[\d,.]*) ms vs stable (\d[\d,.]*) ms \(tolerance 50 ms\)"),
])
async def test_a_bad_canary_at_10_percent_is_caught_through_the_alias_with_its_numbers(alias, mode, why):
    envoy, stable, canary = alias
    stable.set_mode("ok")
    canary.set_mode(mode)
    try:
        result = await run_probe(production_check(envoy), {})
    finally:
        canary.set_mode("ok")
    comparison = result.comparison
    assert comparison is not None and comparison.verdict == "worse", result.summary
    assert comparison.method == "sequential-sign" and comparison.p_value < 0.01, comparison
    found = re.search(why, comparison.reason)
    assert found, comparison.reason
    if mode == "errors":  # every second answer of the canary failed; stable's none
        assert 30.0 <= float(found.group(1)) <= 70.0, comparison.reason
    else:
        assert float(found.group(1).replace(",", "")) - float(found.group(2).replace(",", "")) > 400, comparison.reason
    # found before the hold's end, and the hold stopped there, saying why
    assert result.stopped and "the canary is worse than stable" in result.stopped, result
    assert result.duration_s < HOLD_S and result.verdict == "fail" and not result.passed, result.summary
    assert any(v.metric == "p95_increase_ms" and not v.passed for v in result.verdicts), result.verdicts
    # the canary's answers are about a tenth of the stream, stable's the rest: told apart by the header
    assert result.baseline is not None and comparison.baseline_samples > 5 * comparison.samples > 0, result.summary
    assert "by deployment (x-golive-deployment: canary canary" in result.summary, result.summary


@pytest.mark.timing  # latencies measured in real time decide it (canary within 50 ms of stable, pair by pair)
async def test_a_healthy_canary_passes_compared_with_stable_through_the_alias(alias):
    envoy, stable, canary = alias
    stable.set_mode("ok")
    canary.set_mode("ok")
    # judged on the comparison alone: a busy machine slows both deployments alike (pairs due 20 ms apart), and the
    # runbook's absolute P95 would judge the machine, not the canary
    compared_only = Thresholds(min_samples=20, p95_increase_ms=50)
    result = await run_probe(production_check(envoy, duration_s=12.0, thresholds=compared_only), {})
    comparison = result.comparison
    assert comparison is not None and comparison.verdict == "no difference", result.summary
    assert comparison.method == "sequential-sign", comparison
    assert result.verdict == "pass" and result.passed and result.stopped is None, result.summary
    # both deployments answered through the alias and were compared: enough of the canary's answers to judge
    assert comparison.samples >= 20 and comparison.baseline_samples > 5 * comparison.samples, result.summary
    assert "unattributed 0" in result.summary, result.summary
    assert any(v.metric == "p95_increase_ms" and v.passed for v in result.verdicts), result.verdicts


async def test_a_canary_share_too_thin_to_compare_is_said_and_counted_as_no_limit(alias):
    envoy, stable, canary = alias
    stable.set_mode("ok")
    canary.set_mode("ok")
    # a second at 50/s: about 5 of the canary's answers, too few to compare (20 each); the stream's own limits judge
    result = await run_probe(production_check(envoy, duration_s=1.0, thresholds=Thresholds(error_rate_pct=1.0,
                                                                                              p95_increase_ms=50)), {})
    assert "by deployment: too few answers to compare (" in result.summary, result.summary
    assert [v.metric for v in result.verdicts] == ["error_rate_pct"], result.verdicts
