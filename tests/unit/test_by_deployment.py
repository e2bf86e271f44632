"""The production alias's one stream judged by deployment (services/prober/by_deployment.py), on simulated streams:
requests due every 1/rate seconds, each routed to the canary with the stage's weight (as Envoy does, at random),
answered in a latency drawn from its deployment's distribution under a load both share."""

from __future__ import annotations

import math
import random

from golive.services.prober.by_deployment import DeploymentSplit
from golive.shared.commands import SplitTraffic

RATE = 20.0
SPLIT = SplitTraffic(canary="dpl_new", stable="dpl_old")


def hold(seed: int, *, seconds: float = 60.0, weight: float = 0.10, canary_errors: float = 0.01,
         canary_extra_ms: float = 0.0, alpha: float = 0.01, tolerance_ms: float = 50.0) -> DeploymentSplit:
    """One simulated hold; requests reported in the order they complete, as the prober hears them."""
    rng = random.Random(seed)
    split = DeploymentSplit(SPLIT, tolerance_ms, alpha, RATE, counted_from=0.0)
    answers = []
    for i in range(int(seconds * RATE)):
        due = i / RATE
        load = 1.0 + 0.8 * math.sin(due / 7.0) + (3.0 if 20 < due < 25 else 0.0)  # a busy spell hits both alike
        canary = rng.random() < weight
        errors = canary_errors if canary else 0.01
        latency = None if rng.random() < errors else rng.lognormvariate(math.log(30.0), 0.6) * load
        if latency is not None and canary:
            latency += canary_extra_ms
        answers.append((due + (latency or 5_000.0) / 1000.0, due, latency, SPLIT.canary if canary else SPLIT.stable))
    for done, due, latency, deployment in sorted(answers):
        split.record(due, latency, deployment, done)
    return split


def test_identical_deployments_behind_the_alias_are_found_worse_at_most_alpha_of_the_time():
    holds = 200
    alarms = sum(hold(seed, seconds=40.0).judge.decision is not None for seed in range(holds))  # type: ignore[union-attr]
    # at most 1% expected; 6 or more of 200 would happen with probability < 2% if the bound held exactly
    assert alarms <= 5, f"{alarms} false alarms in {holds} A/A holds at alpha 0.01"


def test_a_canary_failing_half_its_requests_at_10_percent_is_found_worse_with_its_numbers():
    split = hold(1, canary_errors=0.50)
    decision = split.judge.decision  # type: ignore[union-attr]
    assert decision is not None
    assert decision.reason.startswith("canary error rate "), decision.reason
    assert "vs stable " in decision.reason and "s into the hold" in decision.reason, decision.reason
    assert decision.p_value <= 0.01 and decision.at_s < 60.0


def test_a_canary_300_ms_slower_at_10_percent_is_found_worse_by_its_latency():
    split = hold(2, canary_extra_ms=300.0)
    decision = split.judge.decision  # type: ignore[union-attr]
    assert decision is not None and decision.reason.startswith("canary p95 "), decision


def test_answers_naming_neither_deployment_are_unattributed_and_judge_nothing():
    split = DeploymentSplit(SPLIT, 50.0, 0.01, RATE, counted_from=0.0)
    for i in range(400):
        split.record(i / RATE, None, None if i % 2 else "dpl_other", i / RATE + 5.0)
    assert split.unattributed == 400 and split.canary.samples == split.stable.samples == 0
    assert split.judge is not None and split.judge.paired.pairs == 0
    assert split.words("x-golive-deployment") == (
        "x-golive-deployment: canary dpl_new 0, stable dpl_old 0, unattributed 400; no answer named either deployment "
        "in x-golive-deployment: check the probe's deployment_header")


def test_a_closed_loop_has_no_shared_schedule_so_no_sequential_judge():
    split = DeploymentSplit(SPLIT, 50.0, 0.01, None, counted_from=0.0)
    split.record(0.0, 10.0, " dpl_new ", 0.01)
    assert split.judge is None and split.canary.count == 1


def test_the_demo_app_sends_the_header_the_http_probe_reads_by_default():
    from golive.demo.app import DEPLOYMENT_HEADER
    from golive.shared.plan.probes import HttpProbe

    assert HttpProbe.model_fields["deployment_header"].default == DEPLOYMENT_HEADER
