"""`golive migrate PLAN --dry-run`: the lint result and what would run, touching nothing (pure)."""

from __future__ import annotations

from golive.services.migrator.statements import lint
from golive.shared.commands import ApplyMigrations

_WHAT = {
    "create_index": "build {index} (looked up first: valid -> skipped, invalid -> dropped and rebuilt; "
                    "checked valid and ready after)",
    "drop_index": "drop {index}",
    "reindex": "rebuild {index} (an invalid _ccnew copy left by a failed reindex is dropped first)",
    "analyze": "analyze {tables} (once no index builds on them)",
    "vacuum": "vacuum {tables} (once no index builds on them)",
}


def dry_run(cmd: ApplyMigrations, *, dry: bool = True) -> tuple[list[str], bool]:
    """Lines to print and whether the lint passed. ``dry`` False: the same plan, said as what runs now."""
    session, preflight, retry = cmd.session, cmd.preflight, cmd.retry
    lines = ["lint:"]
    linted = [lint(s.sql, s.name, {w.rule: w.reason for w in s.waive}) for s in cmd.statements]
    for one in linted:
        if not one.findings:
            lines.append(f"  ok      {one.name}")
        for finding in one.findings:
            mark = "waived " if finding.waived is not None else "ERROR  "
            lines.append(f"  {mark} {one.name}: {finding.describe()}")
    ok = all(one.ok for one in linted)
    if not ok:
        lines.append("nothing would run: fix the errors above or waive a waivable rule with a reason")
        return lines, False
    lines += [
        "would run (dry run: nothing was touched):" if dry else "running now:",
        "  refuse a transaction-mode pooler; take the advisory lock; record history in golive_migrations",
        f"  session: SET lock_timeout = '{session.lock_timeout_ms}ms', statement_timeout = "
        f"'{session.statement_timeout_ms}ms', application_name = '{session.application_name}'; "
        f"progress every {session.progress_interval_s:g}s",
        f"  preflight: transactions older than {preflight.old_transaction_s:g}s -> {preflight.on_old_transactions}"
        + (f" (at most {preflight.wait_max_s:g}s)" if preflight.on_old_transactions == "wait" else ""),
        f"  retries: at most {retry.max_attempts} attempt(s) on lock timeouts and lost backends, backoff from "
        f"{retry.backoff_s:g}s, invalid index dropped first",
    ]
    for n, (spec, one) in enumerate(zip(cmd.statements, linted, strict=True), start=1):
        statement = one.statement
        tables = ", ".join(statement.tables) or "the whole database"
        what = _WHAT[statement.kind].format(index=statement.index, tables=tables)
        lines.append(f"  {n}. {spec.name}: {what}" + (" [reapply]" if spec.reapply else ""))
        lines.append(f"     {statement.sql}")
    return lines, True
