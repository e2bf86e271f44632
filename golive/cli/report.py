"""`golive report`: a run's lock-in artifacts rebuilt from the event stream, or the weekly performance report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from golive.cli.arguments import run_id_checked
from golive.cli.console import err, exit_codes, out
from golive.exit_codes import EXIT_INVALID
from golive.shared.extras import require_extra
from golive.shared.settings import Settings


def report(
    run_id: Annotated[str | None, typer.Argument(help="The run to report on", callback=run_id_checked)] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder (default: <artifacts dir>/<run>, or <artifacts dir> with --weekly)")] = None,
    weekly: Annotated[bool, typer.Option("--weekly", help="The weekly performance report of all runs instead")] = False,
    since: Annotated[str | None, typer.Option(help="With --weekly: start (YYYY-MM-DD or ISO time, UTC; default: until - 7 days)")] = None,
    until: Annotated[str | None, typer.Option(help="With --weekly: end, exclusive (default: since + 7 days, else now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written as a JSON array of paths")] = False,
) -> None:
    """Rebuild a run's artifacts from the event stream: report.md/html/json, chart.png,
    prod_performance_validation.json, badges. With --weekly: weekly_performance_report_<YYYYWW>.json/.md of
    every run that started in the week (outcomes, durations, rollbacks by cause, p95 trends)."""
    from golive.client import rebuild_artifacts, weekly_artifacts  # the bus and the reports load only for the commands that use them
    from golive.services.coordinator.artifacts import OutsideArtifacts, run_directory
    settings = Settings()
    if weekly == (run_id is not None):
        err.print("give a run id, or --weekly (not both)", style="red")
        raise typer.Exit(EXIT_INVALID)
    with exit_codes():
        if not weekly:  # before reading the stream: the chart, report.html and badges need the `reports` extra
            require_extra("reports", "`golive report RUN` (a run's chart, report.html and badges)")
        if weekly:
            start, end = week_bounds(since, until)
            written = asyncio.run(weekly_artifacts(settings, start, end, out_dir or settings.artifacts_dir))
        else:
            try:
                directory = out_dir or run_directory(settings.artifacts_dir, run_id)
            except OutsideArtifacts as exc:
                err.print(str(exc), style="red")
                raise typer.Exit(EXIT_INVALID) from None
            written = asyncio.run(rebuild_artifacts(settings, run_id, directory))
    if as_json:
        from golive.views.as_json import emit

        return emit([str(path) for path in written])
    for path in written:
        out.print(str(path))


def week_bounds(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until) from the options: dates or ISO times, UTC unless they say otherwise; the runbook's
    default is the last 7 days."""
    def parse(text: str, option: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            err.print(f"{option} {text!r} is not a date (use YYYY-MM-DD or an ISO time)", style="red")
            raise typer.Exit(EXIT_INVALID) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    week = timedelta(days=7)
    end = parse(until, "--until") if until else (parse(since, "--since") + week if since else datetime.now(UTC))
    start = parse(since, "--since") if since else end - week
    if end <= start:
        err.print(f"--until ({end:%Y-%m-%d %H:%M}) is not after --since ({start:%Y-%m-%d %H:%M})", style="red")
        raise typer.Exit(EXIT_INVALID)
    return start, end
