"""`golive serve NAME` (one service in this process) and `golive up` (the embedded stack, golive/stack/)."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from golive.cli.console import err, exit_codes, out
from golive.exit_codes import EXIT_INVALID, EXIT_STOPPED
from golive.shared.extras import require_extra
from golive.shared.settings import Settings
from golive.shared.subjects import SERVICES


def serve(
    name: Annotated[str, typer.Argument(help=f"Service: {', '.join(SERVICES)}")],
    metrics_port: Annotated[int, typer.Option(help="Port for Prometheus /metrics (0: any free port)")] = 0,
    metrics_port_file: Annotated[Path | None, typer.Option(
        help="Write the metrics port bound to this file once serving (what a supervisor reads with port 0)")] = None,
) -> None:
    """Run one service in this process until SIGINT/SIGTERM (graceful: work in flight finishes or is handed back)."""
    if name not in SERVICES:
        err.print(f"unknown service {name!r}; services: {', '.join(SERVICES)}", style="red")
        raise typer.Exit(EXIT_INVALID)
    from golive.serve import serve as serve_service
    from golive.services.prober.event_loop import new_event_loop

    # the prober's maximum rate is its event loop's cost per request: it runs on uvloop where installed
    with exit_codes(), asyncio.Runner(loop_factory=new_event_loop if name == "prober" else None) as runner:
        runner.run(serve_service(name, Settings(), metrics_port, metrics_port_file))


def up(
    state_dir: Annotated[Path | None, typer.Option(help="Where data, logs and the stack file live")] = None,
) -> None:
    """Start the embedded stack: nats-server (JetStream), PostgreSQL, a local Slack webhook receiver and the
    five services, all on loopback. Ctrl-C stops all of it (also while it starts), says what it stopped and
    exits 0."""
    with exit_codes():
        require_extra("stack", "`golive up` (the embedded nats-server and PostgreSQL)")
    stop = threading.Event()
    asked: list[str] = []

    def stop_on(signum: int, _frame: object) -> None:
        if not stop.is_set():
            asked.append(signal.Signals(signum).name)
            err.print(f"{_ASKED.get(asked[0], asked[0])}: stopping the stack...")
        stop.set()

    # first, before the stack's modules load: a Ctrl-C at any time from here on stops what started, in order
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_on)
    from golive.stack.up import run_stack

    directory = (state_dir or Settings().state_dir).resolve()
    stopped = run_stack(directory, out.print, stop)
    why = f" on {_ASKED.get(asked[0], asked[0])}" if asked else ""
    what = ", ".join(stopped) if stopped else "nothing had started yet"
    out.print(f"stack stopped{why}: {what}; data and logs kept in {directory}")
    raise typer.Exit(EXIT_STOPPED)


_ASKED = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}
