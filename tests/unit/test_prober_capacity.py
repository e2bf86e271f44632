"""The prober's connection budget (services/prober/capacity.py): what a hold needs, what fits, and the words of a
refusal."""

from __future__ import annotations

import pytest

from golive.services.prober.capacity import AtCapacity, ConnectionBudget, connections_needed
from golive.shared.commands import HttpProbeSpec, PgHealthProbeSpec, RunProbe


def test_a_hold_needs_a_connection_per_worker_per_target_and_per_server_a_health_probe_samples():
    canary = RunProbe(probe=HttpProbeSpec(name="app", url="http://canary/h"), duration_s=1, concurrency=4,
                      baseline=HttpProbeSpec(name="app", url="http://stable/h"))
    guard = RunProbe(probe=PgHealthProbeSpec(name="db", database_url_env="DB", replica_url_envs=["R1", "R2"],
                                             pgbouncer_admin_url_env="PGB"), duration_s=1)
    assert connections_needed([canary, guard]) == 4 * 2 + 4


def test_holds_run_while_they_fit_and_the_one_that_does_not_is_refused_saying_why():
    budget = ConnectionBudget(limit=10)
    with budget.claim(6), budget.claim(3):
        assert (budget.in_use, budget.holds) == (9, 2)
        with pytest.raises(AtCapacity, match=r"needs 2 connections, 9 of 10 in use by 2 running holds"):
            with budget.claim(2):
                pass
        with budget.claim(1):
            assert budget.most_holds == 3
    assert (budget.in_use, budget.holds) == (0, 0)
    with pytest.raises(AtCapacity, match="more than its whole budget of 10"):
        with budget.claim(11):
            pass
