"""A prometheus check whose server is named by an environment variable that is not set where the prober runs: refused
by default, skipped and saying so with ``when_unset: skip`` (the runbook plan on a stack without Prometheus)."""

from __future__ import annotations

import pytest

from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import run_probes
from golive.shared.commands import LoadSpec, RunProbe, Thresholds
from golive.shared.events import ProbeWindow
from golive.shared.plan.probes import ProbeContext, PrometheusProbe
from golive.shared.plan.targets import Targets

QUERIES = {"rate": "sum(rate(r[{window}]))", "error_ratio": "sum(rate(e[{window}]))",
           "latency": "histogram_quantile({quantile}, sum by (le) (rate(l_bucket[{window}])))"}


def check(**probe) -> RunProbe:
    plan = PrometheusProbe.model_validate({"kind": "prometheus", "url": "${GOLIVE_PROMETHEUS_URL}", "queries": QUERIES,
                                           **probe})

    def spec(deployment: str):
        return plan.spec("user_traffic", ProbeContext(database_url_env="UNUSED", deployment=deployment, targets=Targets()))

    return RunProbe(probe=spec("canary"), baseline=spec("stable"), duration_s=1.0, window_s=0.5, label="stage 1 (10%)",
                    thresholds=Thresholds(p95_ms=400, error_rate_pct=1.0, p95_increase_ms=50), load=LoadSpec())


async def test_an_unset_server_variable_refuses_the_check_by_default():
    with pytest.raises(ProbeSetupError, match="GOLIVE_PROMETHEUS_URL is not set"):
        await run_probes([check()], {})


async def test_with_when_unset_skip_the_check_is_skipped_says_why_and_publishes_no_window():
    windows: list[ProbeWindow] = []

    async def publish(window: ProbeWindow) -> None:
        windows.append(window)

    [result] = await run_probes([check(when_unset="skip")], {}, publish_window=publish)
    assert result.summary == ("user_traffic: skipped: GOLIVE_PROMETHEUS_URL is not set where the prober runs "
                              "(when_unset: skip)"), result.summary
    assert result.verdict == "pass" and result.count == 0 and result.verdicts == [] and result.comparison is None
    assert windows == []  # no window: nothing for the stage's analysis to count as evidence either way
