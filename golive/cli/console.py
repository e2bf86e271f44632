"""What every command prints to and how a command ends on an error it expects: the terminal's two consoles,
the line printed per event, and the exit code (with the reason on stderr) for what talking to the bus can meet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.text import Text

from golive.exit_codes import EXIT_INVALID, EXIT_UNREACHABLE, RunNotControllable
from golive.shared.envelope import Envelope
from golive.shared.extras import MissingExtra
from golive.shared.plan_versions import PlanVersionError
from golive.shared.settings import BusUnreachable
from golive.views.lines import describe, terminal

out = terminal()  # markup off: every line below may carry a plan's, a service's or a database's text
err = terminal(stderr=True)


def event_printer(as_json: bool) -> Callable[[Envelope], None]:
    """The echo for a run's events: a CloudEvents JSON line each (``--json``), or a timed, styled line each."""
    def echo(envelope: Envelope) -> None:
        if as_json:
            print(envelope.to_json().decode(), flush=True)
            return
        style, text = describe(envelope)
        # a styled Text, not print(style=): under the live panel the style would also paint the panel
        out.print(Text(f"{envelope.time:%H:%M:%S} {text}", style=style or ""))

    return echo


@contextmanager
def exit_codes() -> Iterator[None]:
    """What a command that talks to the bus can meet, as its exit code with the reason on stderr."""
    try:
        yield
    except RunNotControllable as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_INVALID) from None
    except PlanVersionError as exc:  # a stored run's plan this golive cannot read (a newer golive started it)
        err.print(f"cannot read a run's plan: {exc}", style="red")
        raise typer.Exit(EXIT_INVALID) from None
    except BusUnreachable as exc:
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except MissingExtra as exc:  # names the extra to install: pip install 'golive[reports]'
        err.print(str(exc), style="red")
        raise typer.Exit(EXIT_INVALID) from None
