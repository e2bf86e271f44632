"""The command line's arguments checked as they are read, before anything is sent or written: run and
deployment ids, and plan files (exit 2 with every problem)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer

from golive.cli.console import err
from golive.exit_codes import EXIT_INVALID
from golive.shared.ids import InvalidId, check_id
from golive.shared.plan import Plan, PlanError
from golive.shared.secrets import redact


def _valid_id(what: str) -> Callable[[str | None], str | None]:
    """A typer callback: a run or deployment id is checked as the command line is read, before anything is sent
    or written (it becomes a subject token and a folder name): exit 2 with the rule."""
    def check(value: str | None) -> str | None:
        if value is not None:
            try:
                check_id(value, what)
            except InvalidId as exc:
                err.print(str(exc), style="red")
                raise typer.Exit(EXIT_INVALID) from None
        return value

    return check


run_id_checked, deployment_id_checked = _valid_id("run id"), _valid_id("deployment id")


def checked_plan(path: Path) -> Plan:
    """The plan at ``path`` after every check (golive/plans/check.py), or exit 2 listing every problem."""
    from golive.plans.check import check_plan

    try:
        return check_plan(path)
    except PlanError as exc:
        refuse_plan(path, exc)


def refuse_plan(path: Path, error: PlanError) -> NoReturn:
    """Print every problem of the plan at ``path``, one a line as compilers do (``FILE:LINE: path: reason``,
    so a terminal or an editor jumps to it), then exit 2."""
    for problem in error.problems:
        err.print(redact(problem), style="red")
    count = len(error.problems)
    err.print(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was run")
    raise typer.Exit(EXIT_INVALID)
