"""The registry of probe targets by kind (Flagger's provider shape): adding a kind is one module and one line here,
beside its plan model and spec (one module of shared/plan/probes/ and one entry of its KINDS)."""

from __future__ import annotations

from collections.abc import Callable

from golive.services.prober.http_probe import HttpTarget
from golive.services.prober.kinds import ProbeTarget
from golive.services.prober.pg_health import PgHealthTarget
from golive.services.prober.prometheus_probe import PrometheusTarget
from golive.services.prober.sql_probe import SqlTarget
from golive.shared.plan.probes import ProbeSpec

Factory = Callable[..., ProbeTarget]
KINDS: dict[str, Factory] = {"sql": SqlTarget.from_spec, "http": HttpTarget.from_spec, "pg_health": PgHealthTarget.from_spec,
                             "prometheus": PrometheusTarget.from_spec}


def make_target(spec: ProbeSpec, env: dict[str, str]) -> ProbeTarget:
    """The target for ``spec``; secrets (URLs, header values) are read from ``env`` by variable name."""
    return KINDS[spec.kind](spec, env)
