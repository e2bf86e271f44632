"""The plan's migrations: statements run one at a time outside any transaction, with the migrator's session,
preflight and retry settings. ApplyMigrations and RevertMigrations carry these very models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from golive.shared.plan.base import MAX_ITEMS, Strict


class MigrationWaiver(Strict):
    """A lint rule knowingly waived for one statement; the reason is recorded in the history."""

    rule: str
    reason: str = Field(min_length=1)


class MigrationStatement(Strict):
    """One statement, applied alone in autocommit; its name is its identity in the migration history."""

    name: str
    sql: str
    waive: list[MigrationWaiver] = Field(default=[], description="lint rules waived for this statement, each with a reason")
    reapply: bool = Field(default=False, description="apply even if this name was applied with another statement")


class MigrationSession(Strict):
    """Session settings applied on the migrator's dedicated connection (SET, not SET LOCAL)."""

    lock_timeout_ms: int = Field(default=5_000, ge=0)
    statement_timeout_ms: int = Field(default=0, ge=0)
    application_name: str = "golive-migrator"
    progress_interval_s: float = Field(default=0.5, gt=0, le=1.0, description="how often a build's progress is polled")


class MigrationPreflight(Strict):
    """What to do about transactions older than ``old_transaction_s`` (a build would wait for them)."""

    old_transaction_s: float = Field(default=60.0, gt=0)
    on_old_transactions: Literal["wait", "fail", "continue"] = "wait"
    wait_max_s: float = Field(default=600.0, gt=0, description="with wait: fail when they are still there after this")


class MigrationRetry(Strict):
    """Retries of a statement that hit a lock timeout or lost its backend; the invalid index is dropped first."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, description="first pause; doubles each retry, capped at 30 s")


class Migrations(Strict):
    session: MigrationSession = MigrationSession()
    preflight: MigrationPreflight = MigrationPreflight()
    retry: MigrationRetry = MigrationRetry()
    statements: list[MigrationStatement] = Field(default=[], max_length=MAX_ITEMS)
