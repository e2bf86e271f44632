"""What every probe kind is: a plan probe (as a plan writes it) and its spec (as a RunProbe carries it).

A kind is one module of shared/plan/probes/ holding both models and how one becomes the other, registered by
name in shared/plan/probes/__init__.py. The prober runs it with a target of its own (services/prober/targets.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from golive.shared.plan.base import Strict

if TYPE_CHECKING:
    from golive.shared.plan.targets import Targets

S = TypeVar("S", bound="ProbeSpecBase")


@dataclass(frozen=True)
class ProbeContext:
    """What a plan probe needs to become a spec for one check: the plan's database (a probe's default), the
    deployment the check aims at and where deployments answer."""

    database_url_env: str
    deployment: str
    targets: Targets


class PlanProbe(Strict):
    """A probe as a plan writes it under ``probes: {name: {kind: ..., ...}}`` (``kind`` absent: sql)."""

    KIND: ClassVar[str]
    kind: str
    timeout_ms: int = Field(default=2_000, gt=0, description="how long one request may take")

    def aims_at_deployment(self) -> bool:
        """Whether each check of this probe aims at one deployment (a baseline can compare canary and stable)."""
        return False

    def spec(self, name: str, context: ProbeContext) -> ProbeSpecBase:
        """This probe, named ``name``, resolved for one check: what the prober needs and nothing of the plan."""
        raise NotImplementedError(f"probe kind {self.kind} has no spec")

    def _as(self, spec: type[S], **resolved: Any) -> S:
        # the plan validated this probe's values, and what is resolved comes from validated parts of the plan: the
        # spec takes them as they are (typed values passed on, not checked a second time); the prober's parse of
        # the RunProbe is the next edge
        return spec.model_construct(**{**dict(self), **resolved})


class ProbeSpecBase(PlanProbe):
    """A plan probe as a RunProbe carries it: named, and resolved for one check (its database, its url)."""

    name: str


@dataclass(frozen=True)
class ProbeKind:
    """A probe kind as it is registered: its plan model, the spec a RunProbe carries, and (for a kind another package
    adds through the ``golive.probe_kinds`` entry point group) ``target``, the ``"module:attribute"`` of the prober's
    factory ``(spec, env) -> ProbeTarget`` (services/prober/kinds.py), imported by the prober only. The built-in kinds'
    targets are registered in services/prober/targets.py."""

    probe: type[PlanProbe]
    spec: type[ProbeSpecBase]
    target: str | None = None
