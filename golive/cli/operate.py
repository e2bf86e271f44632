"""The operator's commands on a run under way: abort, approve, pause, continue, retry, and resume (drive it from
this process). Each is checked against the coordinator's own rule before anything is sent (golive/client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn

import typer

from golive.cli.arguments import run_id_checked
from golive.cli.console import err, event_printer, exit_codes, out
from golive.exit_codes import EXIT_INTERRUPTED
from golive.shared.envelope import Envelope
from golive.shared.settings import Settings
from golive.views.live import watching

# abort_run, pause_run, continue_run, retry_run: (settings, run_id, reason, requested_by, echo) -> exit code
OperatorRequest = Callable[[Settings, str, str, str, Callable[[Envelope], None]], Coroutine[Any, Any, int]]


def _request(send: OperatorRequest, run_id: str, reason: str) -> NoReturn:
    """Send one operator request as the operator, print what the coordinator recorded, exit with its code."""
    from golive.client import operator_name
    settings = Settings()
    with exit_codes():
        code = asyncio.run(send(settings, run_id, reason, operator_name(settings), event_printer(False)))
    raise typer.Exit(code)


def abort(
    run_id: Annotated[str, typer.Argument(help="The run to abort", callback=run_id_checked)],
    reason: Annotated[str, typer.Option(help="Why (recorded in the run's events, sent to Slack)")],
) -> None:
    """Abort a run now: its compensations start at once. Follows the run to its end and exits with its code
    (1 rolled back, 3 needs a human); 2 when the run is unknown or already ended."""
    from golive.client import abort_run  # the bus and the reports load only for the commands that use them
    _request(abort_run, run_id, reason)


def approve(
    run_id: Annotated[str, typer.Argument(help="The run waiting at a gate", callback=run_id_checked)],
    stage: Annotated[int | None, typer.Option(help="The stage you approve (guards against approving the wrong one)")] = None,
    comment: Annotated[str, typer.Option(help="Recorded with the approval")] = "",
) -> None:
    """Open the gate a run waits at (a stage with `approval: true`). Exit 2 if it waits at no gate."""
    from golive.client import approve_run, operator_name  # the bus and the reports load only for the commands that use them
    settings = Settings()
    with exit_codes():
        gate = asyncio.run(approve_run(settings, run_id, stage, operator_name(settings), comment))
    out.print(f"approved {gate} of run {run_id}")


def pause(
    run_id: Annotated[str, typer.Argument(help="The run to hold", callback=run_id_checked)],
    reason: Annotated[str, typer.Option(help="Why (recorded in the run's events)")],
) -> None:
    """Hold a run where it is: the step in flight finishes (a hold keeps measuring), the next one waits for
    `golive continue`; the step's timeout stops counting. Failures still roll back; `golive abort` still works.
    Exit 2 when the run is unknown, ended, rolling back or already paused."""
    from golive.client import pause_run  # the bus and the reports load only for the commands that use them
    _request(pause_run, run_id, reason)


def continue_(
    run_id: Annotated[str, typer.Argument(help="The paused run", callback=run_id_checked)],
    reason: Annotated[str, typer.Option(help="Recorded with the request")] = "",
) -> None:
    """Let a paused run go on: the step it held back starts now. Exit 2 when the run is not paused."""
    from golive.client import continue_run  # the bus and the reports load only for the commands that use them
    _request(continue_run, run_id, reason)


def retry(
    run_id: Annotated[str, typer.Argument(help="The run that needs a human", callback=run_id_checked)],
    reason: Annotated[str, typer.Option(help="What was fixed (recorded in the run's events)")] = "",
) -> None:
    """Once the cause is fixed, run what a needs_human run has left to undo again, from the first not done.
    Follows the run to its new end and exits with its code (1 rolled back, 3 needs a human again); 2 when the
    run is unknown or does not need a human."""
    from golive.client import retry_run  # the bus and the reports load only for the commands that use them
    _request(retry_run, run_id, reason)


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to drive from this process", callback=run_id_checked)],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Exit 2 at once if another coordinator drives it")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as CloudEvents JSON lines")] = False,
) -> None:
    """Drive a run from this process (its coordinator died, or you want it here): replay its events, take its
    lease, carry on, print its events as `golive run` does, exit with the run's code. While another coordinator
    drives it, wait for that one to end or expire (--no-wait: exit 2). Exit 2 for an unknown or ended run."""
    from golive.resume import resume_run

    try:
        with exit_codes(), watching(out, as_json, event_printer(as_json)) as echo:
            code = asyncio.run(resume_run(Settings(), run_id, not no_wait, echo,
                                          lambda text: err.print(text, style="yellow")))
    except KeyboardInterrupt:
        err.print(f"stopped driving run {run_id}; its lease is released for another coordinator")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(code)
