"""The sql probe: a named query, as the runbook's db_performance_check names them (stripe_upsert, ...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from golive.shared.plan.base import MAX_ITEMS, Problem, Strict
from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeSpecBase
from golive.shared.plan.targets import DEPLOYMENT
from golive.shared.secrets import EnvName


class FixedParams(Strict):
    """The same parameter values for every request."""

    kind: Literal["fixed"] = "fixed"
    values: list[Any] = []


class SampledParams(Strict):
    """Each request takes a random row of ``query`` (run once when the probe starts; keep it small: LIMIT)."""

    kind: Literal["sample"] = "sample"
    query: str


class SequenceParams(Strict):
    """Request n (n = start, start + step, ...) formats ``template``: ``"{n}"`` is n itself, ``"evt_{n}"`` a string."""

    kind: Literal["sequence"] = "sequence"
    template: list[Any] = ["{n}"]
    start: int = 1
    step: int = 1


ParamGenerator = Annotated[FixedParams | SampledParams | SequenceParams, Field(discriminator="kind")]


class SqlProbe(PlanProbe):
    """A named query. A query that may write runs in a transaction that is always rolled back, unless
    ``allow_writes``; a read runs in a read-only session, so a write mistaken for a read fails instead."""

    KIND = "sql"
    kind: Literal["sql"] = "sql"
    query: str
    params: list[Any] = Field(default=[], max_length=MAX_ITEMS, description="fixed parameter values (or params_from, not both)")
    params_from: ParamGenerator | None = None
    allow_writes: bool = Field(default=False, description="let the query's writes commit (default: always rolled back)")
    database_url_env: EnvName | None = Field(default=None, description="default: the plan's database")

    @model_validator(mode="before")
    @classmethod
    def _has_a_query(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("query"):
            raise Problem(("query",), "an sql probe needs a query")
        return data

    @model_validator(mode="after")
    def _one_source_of_parameters(self) -> SqlProbe:
        if self.params and self.params_from is not None:
            raise Problem(("params_from",), "give params (fixed values) or params_from (a generator), not both")
        if DEPLOYMENT in self.query:
            raise Problem(("query",), f"{DEPLOYMENT} is filled in http probe urls only; put it in an http probe's url")
        return self

    def spec(self, name: str, context: ProbeContext) -> SqlProbeSpec:
        return self._as(SqlProbeSpec, name=name, database_url_env=self.database_url_env or context.database_url_env)


class SqlProbeSpec(SqlProbe, ProbeSpecBase):
    """An sql probe as RunProbe carries it: named, its database named."""

    database_url_env: EnvName
