"""What a migration statement is, read by PostgreSQL's own parser, and the lint that runs before anything else.

The functional core of the migrator: no I/O. Every statement is parsed with libpg_query (pglast), the parser
PostgreSQL itself runs, and the lint reads the parse tree, never the text: a semicolon hidden in a dollar quote or
an E'' escape is what PostgreSQL says it is. ``lint`` reports every rule a statement breaks (rule id, statement,
reason, fix), like squawk; a plan may waive a waivable rule per statement with a reason, and no waiver ever admits
a second statement or a statement of another kind. ``classify`` is the strict form: the statement, or
StatementError for the first rule it breaks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql
from pglast.stream import RawStream, maybe_double_quote_name

Kind = Literal["create_index", "drop_index", "reindex", "analyze", "vacuum"]
MAX_SQL_BYTES = 64 * 1024  # refused before parsing: no index statement is this long, and parsing is not free


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
    Rule("syntax-error", "PostgreSQL cannot parse it",
         "correct the SQL (`psql` or `EXPLAIN` show the same error)", waivable=False),
    Rule("statement-too-long", f"longer than {MAX_SQL_BYTES // 1024} KiB",
         "an index statement is short: check what the entry holds", waivable=False),
)


class StatementError(ValueError):
    """A statement the migrator refuses to run, with the rule, the reason and the fix."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Name:
    """A relation's name as PostgreSQL's catalog holds it (the parser folded the case of an unquoted name,
    kept a quoted one as written). ``schema`` None: resolved by the search_path (an index: its table's schema)."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        """As PostgreSQL prints it: quoted only where needed (``auth.idx_users``, ``"IdxMixed"``)."""
        parts = (self.schema, self.name) if self.schema else (self.name,)
        return ".".join(maybe_double_quote_name(p) for p in parts)

    def parts(self) -> tuple[str, ...]:
        return (self.schema, self.name) if self.schema else (self.name,)

    def regclass(self) -> str:
        """Every part double-quoted: the text ``to_regclass`` resolves to exactly this name."""
        return ".".join('"' + p.replace('"', '""') + '"' for p in self.parts())


@dataclass(frozen=True)
class Statement:
    """One statement the migrator may run. ``index`` and ``tables`` are for people (quoted as PostgreSQL
    prints them); ``index_name``, ``table`` and ``table_names`` are the exact catalog names the migrator
    looks up; ``tree`` is the parse tree (an IndexStmt's definition is compared with an existing index's)."""

    kind: Kind
    sql: str
    index: str | None = None
    tables: tuple[str, ...] = ()  # VACUUM/ANALYZE: the tables named (none: the whole database)
    index_name: Name | None = None
    table: Name | None = None  # CREATE INDEX: the table it is built on
    table_names: tuple[Name, ...] = ()
    tree: Any = field(default=None, compare=False, repr=False)


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


def lint(sql: str, name: str = "", waivers: Mapping[str, str] | None = None) -> Linted:
    """Every rule ``sql`` breaks, with the plan's ``waivers`` (rule id -> reason) applied.

    A waiver of a rule that cannot be waived (the migrator could not run the statement safely at all)
    does not apply, and a waiver of a rule the statement does not break is itself a finding.
    """
    waivers = dict(waivers or {})
    statement, broken, detail = _read(sql)
    findings = []
    for rule_id in broken:
        rule = RULES[rule_id]
        waived = waivers.pop(rule_id, None) if rule.waivable else None
        reason = f"{rule.reason}: {detail}" if rule_id == "syntax-error" and detail else rule.reason
        findings.append(Finding(rule_id, name, sql, reason, rule.fix, rule.waivable, waived))
    for rule_id, reason in waivers.items():
        if rule_id in RULES and not RULES[rule_id].waivable and rule_id in broken:
            continue  # reported above as unwaived
        if statement is None and rule_id in RULES and RULES[rule_id].waivable:
            continue  # the statement could not be read at all: whether it breaks the rule is unknown
        why = (f"{rule_id} cannot be waived" if rule_id in RULES and not RULES[rule_id].waivable
               else f"waiver of {rule_id!r}, which this statement does not break" if rule_id in RULES
               else f"waiver of an unknown rule {rule_id!r} (rules: {', '.join(RULES)})")
        findings.append(Finding("invalid-waiver", name, sql, why, "remove the waiver", False))
    return Linted(name, sql, statement, findings)


def classify(sql: str, waivers: Mapping[str, str] | None = None) -> Statement:
    """Read one statement; refuse what cannot be run safely online (StatementError naming the rule).

    Refused unless waived: index builds, drops or reindexes without CONCURRENTLY (they lock writes),
    IF NOT EXISTS, VACUUM FULL. Never accepted: SQL PostgreSQL cannot parse, several statements in one
    string or a BEGIN/COMMIT wrapper (CONCURRENTLY fails in a transaction), unnamed indexes (a retry could
    not find them), and anything that is not an index, ANALYZE or VACUUM statement.
    """
    linted = lint(sql, waivers=waivers)
    if linted.errors:
        first = linted.errors[0]
        raise StatementError(first.rule, first.describe())
    assert linted.statement is not None
    return linted.statement


# --- reading the parse tree ------------------------------------------------------------------------


def _read(sql: str) -> tuple[Statement | None, list[str], str | None]:
    """(the statement, the rules it breaks before waivers, the parser's error if any)."""
    if len(sql.encode()) > MAX_SQL_BYTES:
        return None, ["statement-too-long"], None
    try:
        raw = parse_sql(sql)
    except ParseError as exc:
        return None, ["syntax-error"], str(exc)
    if not raw:
        return None, ["unsupported-statement"], None
    broken = []
    if any(isinstance(r.stmt, ast.TransactionStmt) for r in raw):
        broken.append("ban-transaction-wrapper")
    if len(raw) > 1:
        broken.append("one-statement-per-entry")
    if broken:
        return None, broken, None
    statement, rules = _statement(raw[0].stmt, _text(sql, raw[0]))
    return statement, rules, None


def _text(sql: str, raw: ast.RawStmt) -> str:
    """The statement's own text (character offsets), without the blanks and the semicolon around it."""
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(sql)
    return sql[start:end].strip().rstrip(";").strip()


def _statement(node: ast.Node, text: str) -> tuple[Statement | None, list[str]]:
    if isinstance(node, ast.IndexStmt):
        return _create_index(node, text)
    if isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX:
        if len(node.objects) != 1 or node.behavior == enums.DropBehavior.DROP_CASCADE:
            return None, ["unsupported-statement"]  # several indexes, or CASCADE (it drops constraints too)
        index = Name(*reversed([s.sval for s in node.objects[0]]))
        return (Statement("drop_index", text, str(index), index_name=index),
                [] if node.concurrent else ["require-concurrent-index-deletion"])
    if isinstance(node, ast.ReindexStmt) and node.kind == enums.ReindexObjectType.REINDEX_OBJECT_INDEX:
        index = _name(node.relation)
        return (Statement("reindex", text, str(index), index_name=index),
                [] if _option(node.params, "concurrently") else ["require-concurrent-reindex"])
    if isinstance(node, ast.VacuumStmt):
        kind: Kind = "vacuum" if node.is_vacuumcmd else "analyze"
        tables = tuple(_name(rel.relation) for rel in node.rels or ())
        rules = ["ban-vacuum-full"] if kind == "vacuum" and _option(node.options, "full") else []
        return Statement(kind, text, None, tuple(str(t) for t in tables), table_names=tables), rules
    return None, ["unsupported-statement"]


def _create_index(node: ast.IndexStmt, text: str) -> tuple[Statement | None, list[str]]:
    rules = []
    if not node.concurrent:
        rules.append("require-concurrent-index-creation")
    if not node.idxname:
        rules.append("require-index-name")
    if node.if_not_exists:
        rules.append("ban-if-not-exists")
    if not node.idxname:
        return None, rules
    table = _name(node.relation)
    # an index lives in its table's schema: `... idx ON auth.users` builds auth.idx
    index = Name(node.idxname, table.schema)
    return Statement("create_index", text, str(index), index_name=index, table=table, tree=node), rules


def _name(rangevar: ast.RangeVar) -> Name:
    return Name(rangevar.relname, rangevar.schemaname or None)


def _option(options: tuple | None, name: str) -> bool:
    """Whether a DefElem option (VACUUM (FULL), REINDEX (CONCURRENTLY)) is on: bare, or given a true value."""
    for option in options or ():
        if isinstance(option, ast.DefElem) and option.defname == name:
            arg = option.arg
            if arg is None:
                return True
            if isinstance(arg, ast.Boolean):
                return bool(arg.boolval)
            if isinstance(arg, ast.Integer):
                return bool(arg.ival)
            if isinstance(arg, ast.String):
                return arg.sval.lower() not in ("false", "off", "no", "0")
            return True
    return False


# --- index definitions ------------------------------------------------------------------------------


def index_definition(statement: ast.IndexStmt | str, *, table: Name | None = None, name: str = "i") -> str:
    """An index definition in one canonical text: deparsed from the parse tree (whitespace, case, quoting
    and CONCURRENTLY do not count), named ``name`` on ``table`` (default: placeholders, so two indexes
    compare by what they index). ``statement``: an IndexStmt, or a CREATE INDEX text (pg_get_indexdef's)."""
    if isinstance(statement, str):
        [raw] = parse_sql(statement)
        statement = raw.stmt
    node = copy.deepcopy(statement)
    node.idxname = name
    target = table or Name("t")
    node.relation = ast.RangeVar(schemaname=target.schema, relname=target.name, inh=statement.relation.inh,
                                 relpersistence="p")
    node.concurrent = False
    node.if_not_exists = False
    node.tableSpace = None
    return RawStream()(node)
