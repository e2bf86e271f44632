"""`golive plan check`, `golive plan schema`, and `golive migrate` (a plan's migrations alone, outside a go-live)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from golive.cli.arguments import checked_plan, refuse_plan
from golive.cli.console import err, out
from golive.exit_codes import EXIT_INVALID


def check(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as a JSON object (docs/client.md)")] = False,
) -> None:
    """Validate a plan: every problem with its path, line and reason. Exit 0 valid, 2 invalid."""
    if as_json:
        from golive.plans.check import check_plan
        from golive.shared.plan import PlanError
        from golive.views.as_json import emit, invalid_plan_document, valid_plan_document

        try:
            emit(valid_plan_document(plan, check_plan(plan)))
        except PlanError as exc:
            emit(invalid_plan_document(plan, exc))
            raise typer.Exit(EXIT_INVALID) from None
        return
    checked = checked_plan(plan)
    stages = " -> ".join(f"{s.weight}%" for s in checked.canary.stages)
    out.print(f"{plan}: valid plan {checked.name!r}: {len(checked.migrations.statements)} migration(s), "
              f"{len(checked.smoke)} smoke check(s), stages {stages}")


def schema(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write it to this file instead of printing it")] = None,
) -> None:
    """Print the plan's JSON Schema (docs/plan.schema.json is this, committed), for editors and CI checks."""
    from golive.shared.plan import plan_schema

    text = plan_schema()
    if out_file is None:
        print(text, end="")
        return
    out_file.write_text(text)
    err.print(f"wrote {out_file}")


def migrate(
    plan: Annotated[Path, typer.Argument(help="Plan file (YAML)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the lint result and what would run; touch nothing")] = False,
) -> None:
    """The plan's migrations alone, outside a go-live: --dry-run prints the lint and what would run without
    touching anything; without it they run now on the plan's database (same lock, history and repairs as
    the migrator service). Exit 0 done, 1 failed, 2 invalid plan or lint errors."""
    from golive.services.migrator.dry_run import dry_run as describe_dry_run
    from golive.shared.commands import ApplyMigrations, MigrationStatement
    from golive.shared.plan import PlanError, load_plan

    try:
        loaded = load_plan(plan)
    except PlanError as exc:
        refuse_plan(plan, exc)
    m = loaded.migrations
    cmd = ApplyMigrations(
        database_url_env=loaded.database.url_env, session=m.session, preflight=m.preflight, retry=m.retry,
        statements=[MigrationStatement(name=s.name, sql=s.sql, waive=s.waive, reapply=s.reapply) for s in m.statements],
    )
    lines, ok = describe_dry_run(cmd, dry=dry_run)
    for line in lines:
        out.print(line, style=None if ok or "ERROR" not in line else "red")
    if not ok:
        raise typer.Exit(EXIT_INVALID)
    if dry_run:
        return
    from golive.services.migrator.runner import migrate_now

    raise typer.Exit(asyncio.run(migrate_now(cmd, out.print)))
