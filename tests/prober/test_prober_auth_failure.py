"""A probe whose database refuses its credentials fails as fatal at once, not as transient (retrying a wrong
password only locks the account or floods the server's log): the rule is the migrator's, shared/postgres_failures.py."""

from __future__ import annotations

import psycopg
import pytest

from golive.services.prober.kinds import ProbeSetupError
from golive.services.prober.run import run_probe
from golive.shared.commands import SampledParams
from tests.prober.conftest import DB_ENV, sql_command


async def test_a_probe_refused_by_the_database_is_not_transient(database_url):
    refused = psycopg.conninfo.make_conninfo(database_url, user="golive_no_such_role")
    cmd = sql_command("SELECT 1 WHERE %s IS NOT NULL",
                      params_from=SampledParams(query="SELECT id FROM stripe_events LIMIT 10"))
    with pytest.raises(ProbeSetupError) as raised:
        await run_probe(cmd, {DB_ENV: refused})
    assert raised.value.transient is False
    assert "golive_no_such_role" in str(raised.value) or "could not run" in str(raised.value)
