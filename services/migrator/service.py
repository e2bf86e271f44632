"""Migrator service shell: takes apply/revert commands off the bus and runs them on Postgres."""

from __future__ import annotations

import psycopg

from services.migrator.index_build import apply, drop_index, open_session
from services.migrator.statements import StatementError, classify
from shared.bus import Bus, CommandError, Work
from shared.commands import ApplyMigrations, RevertMigrations
from shared.events import MigrationsApplied, MigrationsReverted
from shared.secrets import MissingSecret, redact, secret_from_env

TRANSIENT_SQLSTATES = {"55P03", "57014", "40001", "40P01", "53300"}  # lock/statement timeout, conflicts, too many conns


def register(bus: Bus) -> None:
    """Wire the migrator's command handlers onto ``bus``."""

    async def on_apply(cmd: ApplyMigrations, work: Work) -> MigrationsApplied:
        try:
            statements = [(s.name, classify(s.sql)) for s in cmd.statements]
        except StatementError as exc:
            raise CommandError(str(exc), "invalid") from None
        url = _url(cmd.database_url_env)
        results = []
        try:
            async with await open_session(url, cmd.session) as conn:
                for name, statement in statements:
                    bus.log.info("migration.statement", run_id=work.envelope.runid, name=name, kind=statement.kind)
                    results.append(await apply(conn, name, statement))
        except psycopg.Error as exc:
            raise _database_error(exc, url) from None
        return MigrationsApplied(results=results)

    async def on_revert(cmd: RevertMigrations, work: Work) -> MigrationsReverted:
        try:
            statements = [classify(s.sql) for s in cmd.statements]
        except StatementError as exc:
            raise CommandError(str(exc), "invalid") from None
        indexes = [s.index for s in reversed(statements) if s.kind == "create_index" and s.index]
        url = _url(cmd.database_url_env)
        try:
            async with await open_session(url, cmd.session) as conn:
                for index in indexes:
                    await drop_index(conn, index)
        except psycopg.Error as exc:
            raise _database_error(exc, url) from None
        return MigrationsReverted(dropped=indexes)

    bus.on_command(ApplyMigrations, on_apply)
    bus.on_command(RevertMigrations, on_revert)


def _url(env: str) -> str:
    try:
        return secret_from_env(env)
    except MissingSecret as exc:
        raise CommandError(str(exc), "invalid") from None


def _database_error(exc: psycopg.Error, url: str) -> CommandError:
    sqlstate = getattr(exc, "sqlstate", None)
    failure = "transient" if sqlstate in TRANSIENT_SQLSTATES or isinstance(exc, psycopg.OperationalError) else "fatal"
    return CommandError(redact(f"{type(exc).__name__} [{sqlstate or '-'}]: {exc}", url), failure)
