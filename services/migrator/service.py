"""Migrator service shell: takes apply/revert commands off the bus and runs them on Postgres.

Progress (MigrationProgress, OldTransactionsFound) is published while a command runs, correlated to it;
the bus sends in-progress acks meanwhile, so JetStream does not redeliver a long build.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from golive.services.migrator.runner import Context, MigrationFailed, apply_migrations, revert_migrations
from golive.shared.bus import Bus, CommandError, Work
from golive.shared.commands import ApplyMigrations, RevertMigrations
from golive.shared.envelope import Message
from golive.shared.events import MigrationsApplied, MigrationsReverted
from golive.shared.secrets import MissingSecret, redact, secret_from_env

Result = TypeVar("Result", MigrationsApplied, MigrationsReverted)


def register(bus: Bus) -> None:
    """Wire the migrator's command handlers onto ``bus``."""

    def context(work: Work, env: str) -> Context:
        url = _url(env)
        envelope = work.envelope
        counter = itertools.count()

        async def emit(data: Message) -> None:
            # one id per report and delivery: a redelivered command's reports are new facts, not duplicates
            event_id = f"{envelope.id}/{data.short_name()}/{work.attempt}/{next(counter)}"
            await bus.emit(data, run_id=envelope.runid, event_id=event_id, cause=envelope)

        return Context(url=url, run_id=envelope.runid, command_id=envelope.id, applied_by=bus.source,
                       emit=emit, stopping=work.stopping, log=bus.log.bind(run_id=envelope.runid))

    async def migrate(cmd: ApplyMigrations | RevertMigrations, work: Work, action: str,
                      run: Callable[[Any, Context], Awaitable[Result]]) -> Result:
        ctx = context(work, cmd.database_url_env)
        bus.log.info(f"migration.{action}", run_id=work.envelope.runid, statements=[s.name for s in cmd.statements])
        try:
            return await run(cmd, ctx)
        except MigrationFailed as exc:
            raise CommandError(redact(exc.reason, ctx.url), exc.failure) from None

    async def on_apply(cmd: ApplyMigrations, work: Work) -> MigrationsApplied:
        return await migrate(cmd, work, "apply", apply_migrations)

    async def on_revert(cmd: RevertMigrations, work: Work) -> MigrationsReverted:
        return await migrate(cmd, work, "revert", revert_migrations)

    bus.guard_runs = True  # no migration for a run that is unknown or has ended (shared/run_guard.py)
    bus.on_command(ApplyMigrations, on_apply)
    bus.on_command(RevertMigrations, on_revert)


def _url(env: str) -> str:
    try:
        return secret_from_env(env)
    except MissingSecret as exc:
        raise CommandError(str(exc), "invalid") from None
