"""Prober service shell: runs probes asked for on the bus and reports their numbers and verdicts."""

from __future__ import annotations

import time

import psycopg

from services.prober.sql_probe import ProbeStopped, run_sql_probe
from services.prober.stats import judge
from shared.bus import Bus, CommandError, HandBack, Work
from shared.commands import RunProbe
from shared.events import ProbeCompleted
from shared.secrets import MissingSecret, redact, secret_from_env


def register(bus: Bus) -> None:
    """Wire the prober's command handlers onto ``bus``."""

    async def on_run(cmd: RunProbe, work: Work) -> ProbeCompleted:
        try:
            url = secret_from_env(cmd.probe.database_url_env)
        except MissingSecret as exc:
            raise CommandError(str(exc), "invalid") from None
        started = time.perf_counter()
        try:
            window = await run_sql_probe(cmd.probe, url, cmd.duration_s, cmd.concurrency, work.stopping)
        except ProbeStopped:
            raise HandBack() from None
        except psycopg.Error as exc:
            raise CommandError(redact(f"probe {cmd.probe.name} could not connect: {exc}", url), "transient") from None
        verdicts, passed, summary = judge(window, cmd.thresholds)
        bus.log.info("probe.completed", run_id=work.envelope.runid, probe=cmd.probe.name, passed=passed, summary=summary)
        return ProbeCompleted(
            probe=cmd.probe.name,
            label=cmd.label,
            count=window.count,
            errors=window.error_count,
            errors_by_class=dict(window.errors),
            p50_ms=window.percentile_ms(50),
            p95_ms=window.percentile_ms(95),
            p99_ms=window.percentile_ms(99),
            max_ms=window.max_ms(),
            duration_s=round(time.perf_counter() - started, 3),
            verdicts=verdicts,
            passed=passed,
            summary=f"{cmd.probe.name}: {summary}",
        )

    bus.on_command(RunProbe, on_run)
