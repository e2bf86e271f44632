"""What a migration statement is, read from its SQL, and the lint that runs before anything else.

The functional core of the migrator: no I/O. ``lint`` reports every rule a statement breaks (rule id,
statement, reason, fix), like squawk; a plan may waive a waivable rule per statement with a reason.
``classify`` is the strict form: the statement, or StatementError for the first rule it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["create_index", "drop_index", "reindex", "analyze", "vacuum"]


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    fix: str
    waivable: bool


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {r.id: r for r in rules}


RULES = _rules(
    Rule("one-statement-per-entry", "several statements in one string",
         "give each statement its own entry (together they run in one implicit transaction, where CONCURRENTLY fails)",
         waivable=False),
    Rule("ban-transaction-wrapper", "statement wrapped in BEGIN/COMMIT",
         "remove BEGIN/COMMIT: CREATE INDEX CONCURRENTLY cannot run inside a transaction block; the migrator runs "
         "each statement alone in autocommit", waivable=False),
    Rule("require-concurrent-index-creation", "CREATE INDEX without CONCURRENTLY blocks writes",
         "use CREATE INDEX CONCURRENTLY", waivable=True),
    Rule("require-concurrent-index-deletion", "DROP INDEX without CONCURRENTLY blocks reads and writes",
         "use DROP INDEX CONCURRENTLY", waivable=True),
    Rule("require-concurrent-reindex", "REINDEX without CONCURRENTLY blocks writes",
         "use REINDEX INDEX CONCURRENTLY", waivable=True),
    Rule("require-index-name", "unnamed index: name it, so a retry can find and repair it",
         "add a name: CREATE INDEX CONCURRENTLY idx_table_column ON ...", waivable=False),
    Rule("ban-if-not-exists",
         "IF NOT EXISTS accepts an INVALID index left by a failed build",
         "drop IF NOT EXISTS: the migrator looks the index up itself and repairs an invalid one", waivable=True),
    Rule("ban-vacuum-full", "VACUUM FULL rewrites the table under an exclusive lock",
         "use plain VACUUM (ANALYZE)", waivable=True),
    Rule("unsupported-statement",
         "unsupported statement: the migrator runs CREATE/DROP/REINDEX INDEX CONCURRENTLY, ANALYZE and VACUUM",
         "run other changes with a schema migration tool before the go-live", waivable=False),
)


class StatementError(ValueError):
    """A statement the migrator refuses to run, with the rule, the reason and the fix."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Statement:
    kind: Kind
    sql: str
    index: str | None = None
    tables: tuple[str, ...] = ()  # VACUUM/ANALYZE: the tables named (none: the whole database)


@dataclass(frozen=True)
class Finding:
    """One rule a statement breaks. ``waived`` holds the plan's reason when the plan waived it."""

    rule: str
    name: str
    sql: str
    reason: str
    fix: str
    waivable: bool
    waived: str | None = None

    def describe(self) -> str:
        if self.waived is not None:
            return f"{self.reason} [{self.rule}] waived: {self.waived}"
        return f"{self.reason}: {self.fix} [{self.rule}]"


@dataclass(frozen=True)
class Linted:
    """A statement's lint: what it is (None when it cannot be read) and every finding."""

    name: str
    sql: str
    statement: Statement | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.waived is None]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.waived is not None]

    @property
    def ok(self) -> bool:
        return self.statement is not None and not self.errors


_NAME = r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?"
_CREATE = re.compile(
    r"^CREATE\s+(?P<unique>UNIQUE\s+)?INDEX(?P<conc>\s+CONCURRENTLY)?(?P<ine>\s+IF\s+NOT\s+EXISTS)?"
    rf"(?:\s+(?P<name>{_NAME}|\"[^\"]+\"))?\s+ON\s",
    re.IGNORECASE,
)
_ON_TABLE = re.compile(rf"\s*(?:ONLY\s+)?(?P<table>{_NAME})", re.IGNORECASE)
_DROP = re.compile(rf"^DROP\s+INDEX\s+(?P<conc>CONCURRENTLY\s+)?(IF\s+EXISTS\s+)?(?P<name>{_NAME})\s*(?P<rest>.*)$",
                   re.IGNORECASE | re.DOTALL)
_REINDEX = re.compile(rf"^REINDEX\s+(\([^)]*\)\s*)?INDEX\s+(?P<conc>CONCURRENTLY\s+)?(?P<name>{_NAME})\s*$", re.IGNORECASE)
_MAINTENANCE = re.compile(
    r"^(?P<verb>VACUUM|ANALYZE|ANALYSE)\b\s*(?P<options>\([^)]*\))?\s*(?P<words>(?:(?:FULL|FREEZE|VERBOSE|ANALYZE|ANALYSE)\b\s*)*)"
    r"(?P<tables>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TRANSACTION = re.compile(r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT)\b", re.IGNORECASE)


def split_statements(sql: str) -> list[str]:
    """The statements in ``sql``: split on semicolons outside quotes and comments; comments dropped."""
    parts, current, i, n = [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            current.append(" ")
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch and sql.startswith(ch * 2, end):
                    end += 2
                    continue
                if sql[end] == ch:
                    break
                end += 1
            current.append(sql[i:end + 1])
            i = end + 1
            continue
        if ch == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def lint(sql: str, name: str = "", waivers: Mapping[str, str] | None = None) -> Linted:
    """Every rule ``sql`` breaks, with the plan's ``waivers`` (rule id -> reason) applied.

    A waiver of a rule that cannot be waived (the migrator could not run the statement safely at all)
    does not apply, and a waiver of a rule the statement does not break is itself a finding.
    """
    waivers = dict(waivers or {})
    statements = split_statements(sql)
    broken: list[str] = []
    statement: Statement | None = None
    if any(_TRANSACTION.match(s) for s in statements):
        broken.append("ban-transaction-wrapper")
    if len(statements) > 1:
        broken.append("one-statement-per-entry")
    if len(statements) == 1 and not broken:
        statement, rules = _read(statements[0])
        broken += rules
    elif not statements:
        broken.append("unsupported-statement")
    findings = []
    for rule_id in broken:
        rule = RULES[rule_id]
        waived = waivers.pop(rule_id, None) if rule.waivable else None
        findings.append(Finding(rule_id, name, sql, rule.reason, rule.fix, rule.waivable, waived))
    for rule_id, reason in waivers.items():
        if rule_id in RULES and not RULES[rule_id].waivable and rule_id in broken:
            continue  # reported above as unwaived
        why = (f"{rule_id} cannot be waived" if rule_id in RULES and not RULES[rule_id].waivable
               else f"waiver of {rule_id!r}, which this statement does not break" if rule_id in RULES
               else f"waiver of an unknown rule {rule_id!r} (rules: {', '.join(RULES)})")
        findings.append(Finding("invalid-waiver", name, sql, why, "remove the waiver", False))
    return Linted(name, sql, statement, findings)


def _read(body: str) -> tuple[Statement | None, list[str]]:
    """What one statement is and which rules it breaks (before waivers)."""
    if m := _CREATE.match(body):
        rules = []
        if not m.group("conc"):
            rules.append("require-concurrent-index-creation")
        if not m.group("name"):
            rules.append("require-index-name")
        if m.group("ine"):
            rules.append("ban-if-not-exists")
        name = m.group("name")
        table = _ON_TABLE.match(body, m.end())
        if name and "." not in name and table and "." in table.group("table"):
            # an index lives in its table's schema: `... idx ON auth.users` builds auth.idx, which an
            # unqualified lookup (search_path) would not find
            name = f"{table.group('table').rsplit('.', 1)[0]}.{name}"
        return (Statement("create_index", body, name) if name else None), rules
    if m := _DROP.match(body):
        if m.group("rest").strip() and not re.fullmatch(r"(CASCADE|RESTRICT)", m.group("rest").strip(), re.IGNORECASE):
            return None, ["unsupported-statement"]  # several indexes: CONCURRENTLY drops one at a time
        return Statement("drop_index", body, m.group("name")), ([] if m.group("conc") else ["require-concurrent-index-deletion"])
    if m := _REINDEX.match(body):
        return Statement("reindex", body, m.group("name")), ([] if m.group("conc") else ["require-concurrent-reindex"])
    if m := _MAINTENANCE.match(body):
        kind: Kind = "vacuum" if m.group("verb").upper() == "VACUUM" else "analyze"
        flags = f"{m.group('options') or ''} {m.group('words') or ''}"
        rules = ["ban-vacuum-full"] if kind == "vacuum" and re.search(r"\bFULL\b", flags, re.IGNORECASE) else []
        return Statement(kind, body, None, _tables(m.group("tables"))), rules
    return None, ["unsupported-statement"]


def _tables(text: str) -> tuple[str, ...]:
    """Table names of a VACUUM/ANALYZE target list, column lists dropped: ``a (x, y), b`` -> (a, b)."""
    text = re.sub(r"\([^)]*\)", "", text)
    return tuple(t.strip() for t in text.split(",") if t.strip())


def classify(sql: str, waivers: Mapping[str, str] | None = None) -> Statement:
    """Read one statement; refuse what cannot be run safely online (StatementError naming the rule).

    Refused unless waived: index builds, drops or reindexes without CONCURRENTLY (they lock writes),
    IF NOT EXISTS, VACUUM FULL. Never accepted: several statements in one string or a BEGIN/COMMIT
    wrapper (CONCURRENTLY fails in a transaction), unnamed indexes (a retry could not find them), and
    anything that is not an index, ANALYZE or VACUUM statement.
    """
    linted = lint(sql, waivers=waivers)
    if linted.errors:
        first = linted.errors[0]
        raise StatementError(first.rule, first.describe())
    assert linted.statement is not None
    return linted.statement
