"""Apply and revert a command's statements: lint, preflight, lock, history, retries and progress.

Used by the service shell (service.py) with ``emit`` publishing on the bus, and directly by tests and
the benchmark. Failures are MigrationFailed with a reason free of secrets and a failure class.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg
from tenacity import RetryCallState

from golive.services.migrator import history
from golive.services.migrator.index_build import (
    BuildInvalid,
    DefinitionMismatch,
    DropFailed,
    check_built,
    drop_index,
    drop_invalid_leftover,
    execute,
    find_index,
    open_session,
    prepare,
    wait_until_not_building,
)
from golive.services.migrator.preflight import describe, old_transactions, pooler_problem, session_problem
from golive.services.migrator.progress import Progress, poll_until_cancelled
from golive.services.migrator.statements import Linted, Statement, lint
from golive.shared.backoff import Backoff
from golive.shared.bus import HandBack
from golive.shared.commands import ApplyMigrations, MigrationRetry, MigrationSession, MigrationStatement, RevertMigrations
from golive.shared.envelope import Message
from golive.shared.events import (
    FailureClass,
    IndexResult,
    MigrationProgress,
    MigrationsApplied,
    MigrationsReverted,
    OldTransactionsFound,
)
from golive.shared.postgres_failures import is_retryable, reply_may_be_lost
from golive.shared.secrets import redact

MAX_BACKOFF_S = 30.0  # MigrationRetry's backoff_s doubles up to this

Emit = Callable[[Message], Awaitable[None]]


class MigrationFailed(Exception):
    """The command cannot be done: ``reason`` (no secrets) and whether a retry could help."""

    def __init__(self, reason: str, failure: FailureClass = "fatal", attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure
        self.attempts = attempts


async def _no_emit(_: Message) -> None:
    return None


@dataclass
class Context:
    """Who runs the command and where its progress goes."""

    url: str
    run_id: str
    command_id: str
    applied_by: str = "golive-migrator"
    emit: Emit = _no_emit
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    log: object | None = None


def lint_command(statements: list[MigrationStatement]) -> list[Linted]:
    """The lint of every statement with its waivers; MigrationFailed (invalid) listing every error."""
    linted = [lint(s.sql, s.name, {w.rule: w.reason for w in s.waive}) for s in statements]
    errors = [f"{f.name}: {f.describe()}" for one in linted for f in one.errors]
    if errors:
        raise MigrationFailed("lint: " + " | ".join(errors), "invalid")
    return linted


async def apply_migrations(cmd: ApplyMigrations, ctx: Context) -> MigrationsApplied:
    """Run the command's statements in order, each once, resumable after any crash."""
    linted = lint_command(cmd.statements)
    async with _Session(ctx, cmd.session) as session:
        await _preflight(session.conn, cmd, ctx)
        results = []
        for spec, one in zip(cmd.statements, linted, strict=True):
            if ctx.stopping.is_set():
                raise HandBack()
            results.append(await _apply_one(session, spec, one, cmd.retry, ctx))
    return MigrationsApplied(results=results)


async def revert_migrations(cmd: RevertMigrations, ctx: Context) -> MigrationsReverted:
    """Drop the indexes the statements create, newest first (DROP INDEX CONCURRENTLY IF EXISTS): those this
    run (``ctx.run_id``) owns, having started their build (seen to its end or not), and any left invalid; a
    valid index that was there before the run, or that another session built, is kept."""
    linted = [lint(s.sql, s.name, {w.rule: w.reason for w in s.waive}) for s in cmd.statements]
    targets = [(s.name, one.statement) for s, one in zip(cmd.statements, linted, strict=True)
               if one.statement is not None and one.statement.kind == "create_index" and one.statement.index_name]
    results = []
    async with _Session(ctx, cmd.session) as session:
        for name, built in reversed(targets):
            if ctx.stopping.is_set():
                raise HandBack()
            drop = Statement("drop_index", f"DROP INDEX CONCURRENTLY IF EXISTS {built.index}", built.index,
                             index_name=built.index_name, table=built.table)
            results.append(await _run_recorded(session, "revert", name, drop, [], cmd.retry, ctx))
    return MigrationsReverted(dropped=[r.index for r in results if r.action == "dropped" and r.index], results=results)


# --- the session -------------------------------------------------------------------------------


class _Session:
    """The dedicated connection, checked (no transaction pooler), holding the advisory lock; reopened
    (lock and all) when its backend dies mid-statement."""

    def __init__(self, ctx: Context, settings: MigrationSession) -> None:
        self.ctx, self.settings = ctx, settings
        self.conn: psycopg.AsyncConnection | None = None
        self.reported: set[str] = set()  # statements whose progress was reported: they also get a "done"

    async def __aenter__(self) -> _Session:
        if problem := pooler_problem(self.ctx.url):
            raise MigrationFailed(f"refused: {problem}", "invalid")
        try:
            await self.open()
            if problem := await session_problem(self.conn, self.settings.application_name):
                raise MigrationFailed(f"refused: {problem}", "invalid")
            await history.ensure_table(self.conn)
            await history.fail_abandoned(self.conn)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        try:
            self.conn = await open_session(self.ctx.url, self.settings)
        except psycopg.Error as exc:
            failure = "transient" if is_retryable(exc) else "fatal"  # a refused login is never transient
            raise MigrationFailed(_describe_error(exc, self.ctx.url), failure) from None

        async def told(holder: int | None) -> None:
            await self.ctx.emit(MigrationProgress(name="(lock)", status="waiting", phase="waiting for another migrator",
                                                  blocking_pid=holder))

        if not await history.acquire_lock(self.conn, self.ctx.stopping, on_wait=told):
            raise HandBack()

    async def reopen_if_broken(self) -> None:
        if self.conn is None or self.conn.closed or self.conn.broken:
            await self.close()
            await self.open()

    async def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(psycopg.Error):
                if not self.conn.broken:
                    await history.release_lock(self.conn)
            await self.conn.close()


async def _preflight(conn: psycopg.AsyncConnection, cmd: ApplyMigrations, ctx: Context) -> None:
    """Old transactions would make a build wait for them: list them, then wait, fail or continue."""
    policy = cmd.preflight
    found = await old_transactions(conn, policy.old_transaction_s)
    if not found:
        return
    await ctx.emit(OldTransactionsFound(threshold_s=policy.old_transaction_s, policy=policy.on_old_transactions,
                                        transactions=found))
    if policy.on_old_transactions == "continue":
        return
    if policy.on_old_transactions == "wait":
        deadline = time.monotonic() + policy.wait_max_s
        while found and time.monotonic() < deadline:
            if ctx.stopping.is_set():
                raise HandBack()
            await asyncio.sleep(1.0)
            found = await old_transactions(conn, policy.old_transaction_s)
        if not found:
            return
    raise MigrationFailed(
        f"preflight: {len(found)} transaction(s) older than {policy.old_transaction_s:g}s would block the build "
        f"(policy {policy.on_old_transactions}): {describe(found)}", "transient")


# --- one statement -----------------------------------------------------------------------------


async def _apply_one(session: _Session, spec: MigrationStatement, linted: Linted, retry: MigrationRetry,
                     ctx: Context) -> IndexResult:
    conn = session.conn
    statement = linted.statement
    assert statement is not None
    last = await history.last_finished(conn, spec.name)
    done = await history.done_by_command(conn, ctx.command_id, "apply", spec.name)
    if done is None and last is not None and last.operation == "apply" and last.checksum != history.checksum(statement.sql):
        if not spec.reapply:
            raise MigrationFailed(
                f"{spec.name}: was applied (command {last.command_id}) with a different statement; "
                "give the new statement a new name, or mark it reapply: true", "invalid")
    waivers = [{"rule": f.rule, "reason": f.waived} for f in linted.waived]
    return await _run_recorded(session, "apply", spec.name, statement, waivers, retry, ctx)


async def _run_recorded(session: _Session, operation: str, name: str, statement: Statement, waivers: list[dict],
                        retry: MigrationRetry, ctx: Context) -> IndexResult:
    """Run one statement with its history row; a redelivered command answers from the history."""
    waived = [w["rule"] for w in waivers]
    done = await history.done_by_command(session.conn, ctx.command_id, operation, name)
    if done is not None:  # this command already did it: the same answer, no work
        return IndexResult(name=name, index=statement.index, action=done.action, seconds=(done.duration_ms or 0) / 1000,
                           attempts=done.attempts, waived=waived)
    row = await history.start(session.conn, run_id=ctx.run_id, command_id=ctx.command_id, operation=operation,
                              name=name, statement=statement.sql, waivers=waivers, applied_by=ctx.applied_by)
    started = time.perf_counter()
    try:
        action, attempts = await _with_retries(session, row, name, statement, operation, retry, ctx)
    except MigrationFailed as exc:
        await session.reopen_if_broken()
        await history.finish(session.conn, row, status="failed", action=None, attempts=exc.attempts,
                             duration_ms=int((time.perf_counter() - started) * 1000), error=exc.reason,
                             error_statement=statement.sql)
        raise
    duration_ms = int((time.perf_counter() - started) * 1000)
    await history.finish(session.conn, row, status="succeeded", action=action, attempts=attempts, duration_ms=duration_ms)
    if name in session.reported:  # close the progress a watcher was shown; a quick statement has only its result
        await ctx.emit(MigrationProgress(name=name, index=statement.index, status="done", attempt=attempts,
                                         phase=action, overall_percent=100.0, elapsed_s=round(duration_ms / 1000, 3)))
    return IndexResult(name=name, index=statement.index, action=action, seconds=duration_ms / 1000,
                       attempts=attempts, waived=waived)


async def _with_retries(session: _Session, row: int, name: str, statement: Statement, operation: str,
                        retry: MigrationRetry, ctx: Context) -> tuple[str, int]:
    """Bounded retries with backoff on lock timeouts and lost backends; the invalid index is dropped first
    (by ``prepare`` on the next attempt). On giving up, nothing invalid is left behind.

    The first attempt's finding (built, rebuilt_invalid) is what is reported, except when a retry finds the
    index valid after PostgreSQL answered the failed attempt with an error: that attempt built nothing (its
    claim was released), so another session built it, and it is reported as already_present."""
    first_action: str | None = None
    answered = False  # PostgreSQL answered the last attempt's build with an error: it left nothing that is this run's

    async def say_retrying(state: RetryCallState) -> None:
        assert state.outcome is not None  # tenacity waits only after a failed attempt
        await ctx.emit(MigrationProgress(name=name, index=statement.index, status="retrying", attempt=state.attempt_number,
                                         error=_describe_error(state.outcome.exception(), ctx.url)))

    backoff = Backoff(base_s=retry.backoff_s, cap_s=MAX_BACKOFF_S, attempts=retry.max_attempts)
    retrying = backoff.retrying(_retryable, before_sleep=say_retrying)
    try:
        async for attempt in retrying:
            with attempt:
                tried = attempt.retry_state.attempt_number
                if tried > 1:
                    await session.reopen_if_broken()
                    if answered:  # before this attempt asks who owns the index
                        await history.release(session.conn, row)
                try:
                    action = await _attempt(session, row, name, statement, operation, tried, ctx)
                except (psycopg.Error, BuildInvalid, DropFailed, DefinitionMismatch) as exc:
                    # a lost reply keeps the claim: the build may have finished all the same
                    answered = getattr(exc, "golive_action", None) is not None and not reply_may_be_lost(exc)
                    if first_action is None:
                        first_action = getattr(exc, "golive_action", None)
                    raise
                if action == "already_present" and first_action is not None:
                    if ctx.log is not None:
                        ctx.log.info("migration.built_by_another_session", name=name, index=statement.index)
                    return action, tried
                return (first_action or action), tried
    except (psycopg.Error, BuildInvalid, DropFailed, DefinitionMismatch) as exc:  # not retryable, or out of attempts
        tried = retrying.statistics["attempt_number"]
        retryable = _retryable(exc)
        if answered:
            with contextlib.suppress(psycopg.Error, MigrationFailed):  # the failure is what is reported
                await session.reopen_if_broken()
                await history.release(session.conn, row)
        left = await _clean_up(session, statement, ctx)
        why = f"{name}: {_describe_error(exc, ctx.url)}" + (f" (after {tried} attempts)" if tried > 1 else "") + left
        raise MigrationFailed(why, "transient" if retryable else "fatal", tried) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _retryable(exc: BaseException) -> bool:
    """A lock timeout or a lost backend: the statement may succeed on another attempt."""
    return isinstance(exc, psycopg.Error) and is_retryable(exc)


async def _attempt(session: _Session, row_id: int, name: str, statement: Statement, operation: str, attempt: int,
                   ctx: Context) -> str:
    conn = session.conn
    if operation == "revert":
        return await _revert_one(session, name, statement, attempt, ctx)
    action = await prepare(conn, statement)
    builds = statement.kind == "create_index" and statement.index_name is not None
    if action == "already_present":
        owner = await history.owner(conn, name) if builds else None
        if owner is not None and owner.run_id == ctx.run_id and not owner.recorded:
            # this run started the build (an earlier delivery or attempt) and died, or lost the reply, before
            # recording its end: this command is the first to see it, and reports what the run did
            await history.claim(conn, row_id)
            if ctx.log is not None:
                ctx.log.info("migration.build_finished_unseen", name=name, index=statement.index)
            return "built"
        return action
    if builds:
        await history.claim(conn, row_id)  # committed before the build is sent: the run owns what it starts
    try:
        await _with_progress(session, name, statement, attempt, ctx, lambda: execute(conn, statement))
        await check_built(conn, statement)
    except (psycopg.Error, BuildInvalid) as exc:
        exc.golive_action = action  # the first attempt's finding (built / rebuilt_invalid) is what is reported
        raise
    return action


async def _revert_one(session: _Session, name: str, statement: Statement, attempt: int, ctx: Context) -> str:
    """Drop the statement's index when this run owns it or it is invalid; keep a valid one of anyone else."""
    conn = session.conn
    row = await find_index(conn, statement.index_name, statement.table)
    if row is not None and not row.usable:  # a build in progress reads invalid: judge it once it has ended
        await wait_until_not_building(conn, row.oid)
        row = await find_index(conn, statement.index_name, statement.table)
    if row is None:
        return "absent"
    owner = await history.owner(conn, name)
    if row.usable and (owner is None or owner.run_id != ctx.run_id):
        return "kept"  # there before this run, or another session's: undoing the run leaves it
    # drop_index reads pg_index back: "dropped" is reported only once the index is gone
    await _with_progress(session, name, statement, attempt, ctx, lambda: drop_index(conn, row))
    return "dropped"


async def _with_progress(session: _Session, name: str, statement: Statement, attempt: int, ctx: Context,
                         work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` on the session while a second connection polls its progress."""
    interval = session.settings.progress_interval_s

    async def report(progress: Progress, elapsed: float) -> None:
        session.reported.add(name)
        await ctx.emit(MigrationProgress(
            name=name, index=statement.index, status="waiting" if progress.waiting else "progress", attempt=attempt,
            phase=progress.phase, phase_percent=progress.phase_percent, overall_percent=progress.overall_percent,
            lockers_total=progress.lockers_total, lockers_done=progress.lockers_done,
            blocking_pid=progress.blocking_pid,
            blocking_query=redact(progress.blocking_query, ctx.url) if progress.blocking_query else None,
            elapsed_s=round(elapsed, 3),
        ))

    poller = asyncio.create_task(poll_until_cancelled(ctx.url, session.conn.info.backend_pid, interval, report))
    try:
        await work()
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await poller
            except Exception as exc:  # progress is a view: its failure never fails the build
                if ctx.log is not None:
                    ctx.log.warning("migration.progress_failed", error=redact(str(exc), ctx.url))


async def _clean_up(session: _Session, statement: Statement, ctx: Context) -> str:
    """Drop what a failed statement left invalid; say what happened, for the failure's reason."""
    try:
        await session.reopen_if_broken()
        if await drop_invalid_leftover(session.conn, statement):
            return f"; the invalid index {statement.index} was dropped"
        return ""
    except (psycopg.Error, MigrationFailed, DropFailed) as exc:
        why = exc.reason if isinstance(exc, MigrationFailed) else _describe_error(exc, ctx.url)
        return f"; the invalid index {statement.index} could NOT be dropped ({why}): drop it by hand"


def _describe_error(exc: BaseException, url: str) -> str:
    """The error with its SQLSTATE and detail (a duplicate key names the key), secrets removed."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    diag = getattr(exc, "diag", None)
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    message = f"{text} [{sqlstate}]" if sqlstate else text
    if detail:
        message += f": {detail}"
    return redact(message, url)


# --- from the command line ----------------------------------------------------------------------


def describe_progress(event: Message) -> str:
    """One line for a progress report (the CLI's view)."""
    if isinstance(event, OldTransactionsFound):
        return (f"{len(event.transactions)} transaction(s) older than {event.threshold_s:g}s "
                f"({event.policy}): {describe(event.transactions)}")
    if not isinstance(event, MigrationProgress):
        return type(event).__name__
    text = f"{event.name}: {event.status}"
    if event.phase:
        text += f" {event.phase}"
    if event.phase_percent is not None:
        text += f" {event.phase_percent:.0f}%"
    if event.overall_percent is not None:
        text += f" (overall {event.overall_percent:.0f}%)"
    if event.blocking_pid:
        text += f", waiting on pid {event.blocking_pid}" + (f": {event.blocking_query}" if event.blocking_query else "")
    if event.error:
        text += f" after: {event.error}"
    return text + (f" [attempt {event.attempt}]" if event.attempt > 1 else "")


async def migrate_now(cmd: ApplyMigrations, say: Callable[[str], None]) -> int:
    """Run ``cmd`` from the command line, printing progress: 0 done, 1 failed, 2 invalid."""
    import getpass
    import socket
    from datetime import UTC, datetime

    from golive.shared.secrets import MissingSecret, secret_from_env

    try:
        url = secret_from_env(cmd.database_url_env)
    except MissingSecret as exc:
        say(str(exc))
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    async def emit(event: Message) -> None:
        say(describe_progress(event))

    # a command of its own each time: a repeated command id would answer from the history without looking
    ctx = Context(url=url, run_id=f"cli-{stamp}", command_id=f"cli-{stamp}-{secrets.token_hex(4)}",
                  applied_by=f"golive-cli:{getpass.getuser()}@{socket.gethostname()}", emit=emit)
    try:
        applied = await apply_migrations(cmd, ctx)
    except MigrationFailed as exc:
        say(f"failed ({exc.failure}): {redact(exc.reason, url)}")
        return 2 if exc.failure == "invalid" else 1
    for r in applied.results:
        say(_result_line(r))
    return 0


def _result_line(r: IndexResult) -> str:
    """One line per statement's result; an index found valid on a retry was built by another session."""
    if r.action == "already_present" and r.attempts > 1:
        return f"{r.name}: already_present (built by another session while attempt {r.attempts - 1} failed)"
    return f"{r.name}: {r.action} in {r.seconds:.2f}s" + (f" after {r.attempts} attempts" if r.attempts > 1 else "")
