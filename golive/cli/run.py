"""`golive run` starts a go-live and watches it; `golive events` prints the event stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from golive.cli.arguments import checked_plan, deployment_id_checked, run_id_checked
from golive.cli.console import err, event_printer, exit_codes, out
from golive.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID
from golive.services.coordinator.window import start_refusal
from golive.shared.settings import Settings
from golive.views.live import watching


def run(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    deploy_id: Annotated[str, typer.Option(help="The new deployment to roll out", callback=deployment_id_checked)] = "canary",
    previous_deploy_id: Annotated[str | None, typer.Option(help="The deployment to roll back to",
                                                           callback=deployment_id_checked)] = "stable",
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated)", callback=run_id_checked)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as CloudEvents JSON lines")] = False,
    force_window: Annotated[bool, typer.Option("--force-window", help="Start outside the plan's maintenance window")] = False,
    time_scale: Annotated[float, typer.Option("--time-scale", min=1, help="Rehearse with every duration of the plan "
                                              "divided by this (golive/plans/rehearsal.py); 1: real time")] = 1.0,
) -> None:
    """Start a go-live and watch it. Exit 0 succeeded, 1 rolled back, 2 invalid input, 3 needs a human,
    4 bus unreachable. Ctrl-C stops watching; the run goes on (watch it again with `golive events --follow`)."""
    from golive.client import new_run_id, start_and_watch  # the bus and the reports load only for the commands that use them
    checked = checked_plan(plan)
    if time_scale != 1:
        from golive.plans.rehearsal import compress

        checked = compress(checked, time_scale)
    if why := start_refusal(checked.window.maintenance, datetime.now(UTC), force_window):
        err.print(f"nothing started: {why}", style="red")
        raise typer.Exit(EXIT_INVALID)
    run_id = run_id or new_run_id()
    err.print(f"run {run_id}: {checked.name}, deployment {deploy_id} (previous {previous_deploy_id})", style="bold")
    try:
        with exit_codes(), watching(out, as_json, event_printer(as_json)) as echo:
            code = asyncio.run(start_and_watch(Settings(), checked, deploy_id, previous_deploy_id, run_id,
                                               echo, force_window=force_window))
    except KeyboardInterrupt:
        err.print(f"stopped watching; run {run_id} goes on: `golive events --run {run_id} --follow`")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(code)


def events(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's events", callback=run_id_checked)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print CloudEvents JSON lines")] = False,
) -> None:
    """Show the event stream (all runs, or one with --run), as lines or as CloudEvents JSON."""
    from golive.client import show_events  # the bus and the reports load only for the commands that use them
    try:
        with exit_codes():
            code = asyncio.run(show_events(Settings(), run_id, follow, event_printer(as_json)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if code:
        err.print("no events" + (f" for run {run_id}" if run_id else ""))
    raise typer.Exit(code)
