"""The registry of probe targets by kind (Flagger's provider shape): adding a kind is one module and one line here,
beside its plan model and spec (one module of shared/plan/probes/ and one entry of its KINDS). A kind another package
adds names its target in its ProbeKind (shared/plugins.py), imported here on first use."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from golive.services.prober.http_probe import HttpTarget
from golive.services.prober.kinds import ProbeTarget
from golive.services.prober.pg_health import PgHealthTarget
from golive.services.prober.prometheus_probe import PrometheusTarget
from golive.services.prober.sql_probe import SqlTarget
from golive.shared.plan.probes import KINDS as PLAN_KINDS
from golive.shared.plan.probes import ProbeSpec
from golive.shared.plugins import load_reference

Factory = Callable[..., ProbeTarget]
KINDS: dict[str, Factory] = {"sql": SqlTarget.from_spec, "http": HttpTarget.from_spec, "pg_health": PgHealthTarget.from_spec,
                             "prometheus": PrometheusTarget.from_spec}


def make_target(spec: ProbeSpec, env: dict[str, str]) -> ProbeTarget:
    """The target for ``spec``; secrets (URLs, header values) are read from ``env`` by variable name."""
    return _factory(spec.kind)(spec, env)


@cache
def _factory(kind: str) -> Factory:
    if kind in KINDS:
        return KINDS[kind]
    reference = PLAN_KINDS[kind].target  # an installed kind: checked whole when the plan models were built
    assert reference is not None, f"probe kind {kind} names no target"
    factory: Factory = load_reference(reference)
    return factory
