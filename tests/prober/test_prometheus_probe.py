"""The prometheus probe against a real Prometheus scraping the real demo app (stable and canary, each its own
/metrics): healthy traffic passes, an error rate injected on the canary fails with its numbers, a server that
does not answer is inconclusive (never a pass), and a query Prometheus refuses is refused with its message, by
`golive plan check` and when the probe starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from golive.demo.app import DemoApp
from golive.plans.check import check_plan
from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import run_probe
from golive.shared.commands import LoadSpec, RunProbe, Thresholds
from golive.shared.events import ProbeWindow
from golive.shared.plan import PlanError, load_plan
from golive.shared.plan.probes import ProbeContext, PrometheusProbe
from golive.shared.plan.targets import Targets
from golive.stack.process import free_port
from tests.conftest import cloned_database
from tests.harness import REPO
from tests.prober.prometheus_server import Traffic, prometheus, wait_for_series

pytestmark = pytest.mark.timeout(180)

# the example plan's queries (examples/prometheus-traffic.yaml): what these tests prove is what it runs
EXAMPLE = REPO / "examples" / "prometheus-traffic.yaml"
QUERIES = dict(load_plan(EXAMPLE).probes["user_traffic"].queries)  # type: ignore[union-attr]
LIMITS = Thresholds(p95_ms=400, error_rate_pct=1.0, min_samples=20, p95_increase_ms=50)


def probe_plan(url: str, **queries: str) -> PrometheusProbe:
    return PrometheusProbe.model_validate({"kind": "prometheus", "url": url, "queries": {**QUERIES, **queries}})


def command(url: str, *, duration_s: float = 8.0, window_s: float | None = 4.0, **queries: str) -> RunProbe:
    """The canary's traffic against stable's, as a stage's check of a prometheus probe is sent; each window spans
    four scrapes (a rate needs two samples in its range)."""
    plan = probe_plan(url, **queries)

    def spec(deployment: str):
        return plan.spec("user_traffic", ProbeContext(database_url_env="UNUSED", deployment=deployment, targets=Targets()))

    return RunProbe(probe=spec("canary"), baseline=spec("stable"), duration_s=duration_s, window_s=window_s,
                    thresholds=LIMITS, load=LoadSpec(warmup_s=2.0))


@pytest.fixture(scope="module")
def demo(postgres_admin_url):
    """Stable and canary demo apps under steady traffic, and a Prometheus scraping both every second."""
    logs = Path(tempfile.mkdtemp(prefix="golive-prom-demo-"))
    with cloned_database(postgres_admin_url) as database, DemoApp("stable", database, logs) as stable, \
            DemoApp("canary", database, logs) as canary, \
            prometheus([f"127.0.0.1:{stable.port}", f"127.0.0.1:{canary.port}"]) as url, \
            Traffic([stable.url, canary.url]):
        wait_for_series(url, "sum by (deployment) (rate(golive_demo_requests_total[3s]))", 2)
        yield url, stable, canary


@pytest.mark.timing  # its pass rests on latencies measured in real time (p95 < 400 ms, canary within 50 ms of stable)
async def test_healthy_traffic_passes_with_the_canary_compared_to_stable(demo):
    url, stable, canary = demo
    stable.set_mode("ok")
    canary.set_mode("ok")
    windows: list[ProbeWindow] = []

    async def publish(window: ProbeWindow) -> None:
        windows.append(window)

    result = await run_probe(command(url), {}, publish_window=publish)

    assert result.verdict == "pass", result.summary
    assert result.kind == "prometheus"
    assert result.count >= LIMITS.min_samples and result.errors == 0
    assert result.baseline is not None and result.baseline.count >= LIMITS.min_samples
    assert result.comparison is not None and result.comparison.verdict == "no difference", result.comparison
    assert {w.target for w in windows} == {"probe", "baseline"}
    assert all(w.stats.count > 0 and not w.stats.unread for w in windows), windows
    assert sum(w.stats.count for w in windows if w.target == "probe") == result.count


async def test_an_error_rate_on_the_canary_fails_with_its_numbers(demo):
    url, stable, canary = demo
    stable.set_mode("ok")
    canary.set_mode("errors")  # every second answer a 500
    try:
        result = await run_probe(command(url), {})
    finally:
        canary.set_mode("ok")

    assert result.verdict == "fail", result.summary
    [errors] = [v for v in result.verdicts if v.metric == "error_rate_pct"]
    assert not errors.passed and 30 < errors.observed < 70, errors
    assert "error rate" in result.summary and "> 1%" in result.summary, result.summary
    assert result.errors_by_class.get("error_ratio", 0) == result.errors > 0
    assert result.baseline is not None and result.baseline.errors == 0
    assert result.comparison is not None and result.comparison.verdict == "worse", result.comparison


async def test_an_unreachable_server_is_inconclusive_with_why_never_a_pass():
    nowhere = f"http://127.0.0.1:{free_port()}"
    windows: list[ProbeWindow] = []

    async def publish(window: ProbeWindow) -> None:
        windows.append(window)

    result = await run_probe(command(nowhere, duration_s=2.0, window_s=1.0), {}, publish_window=publish)

    assert result.verdict == "inconclusive" and not result.passed, result.summary
    assert "unreachable" in result.summary, result.summary
    assert windows and all("unreachable" in w.stats.unread["requests"] for w in windows), windows
    assert not any(v.passed for v in result.verdicts), result.verdicts


async def test_a_query_prometheus_refuses_refuses_the_probe_at_its_start(demo):
    url, _, _ = demo
    with pytest.raises(ProbeSetupError) as refused:
        await run_probe(command(url, rate="sum(rate(golive_demo_requests_total[{window}])"), {})
    assert "bad_data" in str(refused.value) and "parse error" in str(refused.value), refused.value


def test_plan_check_refuses_a_query_with_the_servers_message_and_line(demo, tmp_path):
    url, _, _ = demo
    plan = tmp_path / "plan.yaml"
    good = (REPO / "golive" / "plans" / "skeleton.yaml").read_text()
    probes = (f"probes:\n  user_traffic:\n    kind: prometheus\n    url: {url}\n    queries:\n"
              f"      rate: 'sum(rate(golive_demo_requests_total[{{window}}])'\n"
              f"      error_ratio: '{QUERIES['error_ratio']}'\n"
              f"      latency: '{QUERIES['latency']}'\n")
    plan.write_text(good.replace("probes:\n", probes, 1))
    line = plan.read_text().splitlines().index("      rate: 'sum(rate(golive_demo_requests_total[{window}])'") + 1

    with pytest.raises(PlanError) as refused:
        check_plan(plan)

    [problem] = refused.value.problems
    assert problem.startswith(f"{plan}:{line}: probes.user_traffic.queries.rate: Prometheus refuses it: bad_data: "), problem
    assert "parse error" in problem, problem

    plan.write_text(plan.read_text().replace("[{window}])'", "[{window}]))'"))
    check_plan(plan)  # the same plan with the query mended passes


def test_the_example_plans_queries_are_ones_prometheus_takes(demo, monkeypatch):
    url, _, _ = demo
    monkeypatch.setenv("GOLIVE_PROMETHEUS_URL", url)
    check_plan(EXAMPLE)  # asked of the server: refused queries would be PlanError
