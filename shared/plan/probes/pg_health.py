"""The pg_health probe: Postgres health gauges (replica lag, WAL lag, connection use, long transactions),
sampled at the load's rate; the plan's guards read them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from golive.shared.plan.durations import Duration
from golive.shared.plan.probes.base import PlanProbe, ProbeContext, ProbeSpecBase
from golive.shared.secrets import EnvName


class PgHealthProbe(PlanProbe):
    """Replica lag (on each replica), WAL lag bytes per replica (pg_stat_replication on the primary), connection
    use against max_connections, transactions older than ``long_transaction``; with ``pgbouncer_admin_url_env``,
    each PgBouncer pool's use."""

    # plans write durations without a unit suffix (`long_transaction: 30s`), commands carry seconds
    # (`long_transaction_s`): one field, spelt as each stored format has always spelt it
    model_config = ConfigDict(serialize_by_alias=True)
    KIND = "pg_health"
    kind: Literal["pg_health"] = "pg_health"
    database_url_env: EnvName | None = Field(default=None, description="default: the plan's database")
    replica_url_envs: list[EnvName] = []
    # PgBouncer's admin console (database "pgbouncer"): each pool's use, (cl_active + cl_waiting) / pool_size
    pgbouncer_admin_url_env: EnvName | None = Field(
        default=None, description="PgBouncer's admin console URL (database pgbouncer), to gauge each pool's use")
    long_transaction_s: Duration = Field(default=60.0, gt=0, alias="long_transaction")

    def spec(self, name: str, context: ProbeContext) -> PgHealthProbeSpec:
        return self._as(PgHealthProbeSpec, name=name,
                        database_url_env=self.database_url_env or context.database_url_env)


class PgHealthProbeSpec(PgHealthProbe, ProbeSpecBase):
    """A pg_health probe as RunProbe carries it: named, its database named."""

    database_url_env: EnvName
    long_transaction_s: float = Field(default=60.0, gt=0)
