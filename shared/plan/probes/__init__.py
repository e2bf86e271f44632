"""Probe kinds by name (Flagger's provider shape): each kind is one module here holding its plan model and its
spec, and one entry of ``KINDS``. Adding a kind: a module like sql.py (a ``PlanProbe`` with a ``spec``, and its
``ProbeSpecBase``), one entry below, and the prober's target for it (services/prober/targets.py). Another package
adds a kind without touching golive: one module with the three and a ``ProbeKind`` declared under the entry point
group ``golive.probe_kinds`` (shared/plugins.py; tests/plugins/golive_example_plugins has one).

``Probe`` (a plan's ``probes``) and ``ProbeSpec`` (RunProbe's ``probe``) are the unions of the registered kinds,
told apart by ``kind`` (absent: sql, the only kind of the first plans and commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

from pydantic import BeforeValidator, Discriminator, Tag, ValidationInfo

from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeKind, ProbeSpecBase
from golive.shared.plan.probes.http import HttpProbe, HttpProbeSpec
from golive.shared.plan.probes.pg_health import PgHealthProbe, PgHealthProbeSpec
from golive.shared.plan.probes.prometheus import PrometheusProbe, PrometheusProbeSpec
from golive.shared.plan.probes.sql import FixedParams, ParamGenerator, SampledParams, SequenceParams, SqlProbe, SqlProbeSpec
from golive.shared.plugins import PROBE_KINDS, PluginError, installed_plugins, load_reference

DEFAULT_KIND = "sql"


# the registration: one entry per kind
BUILT_IN: dict[str, ProbeKind] = {kind.probe.KIND: kind for kind in (
    ProbeKind(SqlProbe, SqlProbeSpec),
    ProbeKind(HttpProbe, HttpProbeSpec),
    ProbeKind(PgHealthProbe, PgHealthProbeSpec),
    ProbeKind(PrometheusProbe, PrometheusProbeSpec),
)}


def _installed_kind(name: str, reference: str) -> ProbeKind:
    """The ProbeKind an installed package declares as ``name = "module:attribute"``, checked whole."""
    where = f"entry point {PROBE_KINDS} {name!r} = {reference!r}"
    try:
        kind = load_reference(reference)
    except Exception as exc:
        hint = (" (its module is imported while golive builds its plan models: from golive, import only "
                "golive.shared.plan.probes.base there)") if isinstance(exc, ImportError) else ""
        raise PluginError(f"{where} could not be loaded: {type(exc).__name__}: {exc}{hint}") from exc
    if not isinstance(kind, ProbeKind):
        raise PluginError(f"{where} is a {type(kind).__name__}, not a golive.shared.plan.probes.base.ProbeKind")
    if not (issubclass(kind.probe, PlanProbe) and issubclass(kind.spec, ProbeSpecBase) and kind.target):
        raise PluginError(f"{where}: a kind needs a PlanProbe model, a ProbeSpecBase spec and its prober target")
    if getattr(kind.probe, "KIND", None) != name or getattr(kind.spec, "KIND", None) != name:
        raise PluginError(f"{where}: its models' KIND is {getattr(kind.probe, 'KIND', None)!r}, not {name!r}")
    return kind


# a built-in name wins: an installed package cannot change what `sql` means
KINDS: dict[str, ProbeKind] = {
    **{name: _installed_kind(name, ref) for name, ref in installed_plugins(PROBE_KINDS).items() if name not in BUILT_IN},
    **BUILT_IN,
}

# The first plans wrote one probe model for every kind: a stored plan's probe holds every kind's field, most at
# these values. A field of another kind is dropped when it holds its value here (it said nothing), and from a
# stored plan whatever it holds (that format ignored it); in a plan file, set to anything else, it is an error.
FIRST_FORMAT: dict[str, Any] = {
    "query": None, "params": [], "params_from": None, "allow_writes": False, "database_url_env": None, "url": None,
    "method": "GET", "headers": {}, "headers_env": {}, "body": None, "expect_status": None, "body_contains": None,
    "replica_url_envs": [], "pgbouncer_admin_url_env": None, "long_transaction": 60.0, "timeout_ms": 2000,
}


def kind_of(value: Any) -> str:
    """The kind of a probe (a model or its dict): ``kind``, or sql when absent."""
    kind = value.get("kind", DEFAULT_KIND) if isinstance(value, dict) else getattr(value, "kind", DEFAULT_KIND)
    return str(kind)


def _keys(model: type[PlanProbe]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _as_its_kind(value: Any, info: ValidationInfo) -> Any:
    """A plan probe with the first format's fields of other kinds left out (see FIRST_FORMAT)."""
    kind = KINDS.get(kind_of(value)) if isinstance(value, dict) else None
    if kind is None:
        return value
    own, stored = _keys(kind.probe), bool(info.context and info.context.get("stored"))
    return {k: v for k, v in value.items()
            if k in own or k not in FIRST_FORMAT or not (stored or v == FIRST_FORMAT[k])}


def _union(models: list[type]) -> Any:
    tagged = tuple(Annotated[model, Tag(name)] for name, model in zip(KINDS, models))
    known = ", ".join(KINDS)
    return Annotated[Union[tagged], Discriminator(  # built from the registry: no kind is listed twice
        kind_of, custom_error_type="probe_kind", custom_error_message=f"a probe's kind is one of {known} (absent: sql)")]


if TYPE_CHECKING:
    Probe: TypeAlias = PlanProbe
    ProbeSpec: TypeAlias = ProbeSpecBase
else:
    Probe = Annotated[_union([k.probe for k in KINDS.values()]), BeforeValidator(_as_its_kind)]
    ProbeSpec = _union([k.spec for k in KINDS.values()])

__all__ = [
    "BUILT_IN", "DEFAULT_KIND", "KINDS", "FixedParams", "HttpProbe", "HttpProbeSpec", "ParamGenerator", "PgHealthProbe",
    "PgHealthProbeSpec", "PlanProbe",
    "PrometheusProbe", "PrometheusProbeSpec", "Probe", "ProbeContext", "ProbeKind", "ProbeSpec", "ProbeSpecBase",
    "SampledParams", "SequenceParams", "SqlProbe", "SqlProbeSpec", "kind_of",
]
