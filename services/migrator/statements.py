"""What a migration statement is, read from its SQL: the functional core of the migrator."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["create_index", "drop_index", "reindex", "analyze", "vacuum"]

_CREATE = re.compile(
    r"^\s*CREATE\s+(UNIQUE\s+)?INDEX(?P<conc>\s+CONCURRENTLY)?(?P<ine>\s+IF\s+NOT\s+EXISTS)?"
    r"(?:\s+(?P<name>[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?))?\s+ON\s",
    re.IGNORECASE,
)
_DROP = re.compile(
    r"^\s*DROP\s+INDEX\s+(?P<conc>CONCURRENTLY\s+)?(IF\s+EXISTS\s+)?(?P<name>[A-Za-z_][\w$.]*)", re.IGNORECASE
)
_REINDEX = re.compile(r"^\s*REINDEX\s+INDEX\s+(?P<conc>CONCURRENTLY\s+)?(?P<name>[A-Za-z_][\w$.]*)", re.IGNORECASE)
_ANALYZE = re.compile(r"^\s*ANALYZE\b", re.IGNORECASE)
_VACUUM = re.compile(r"^\s*VACUUM\b", re.IGNORECASE)


class StatementError(ValueError):
    """A statement the migrator refuses to run, with the reason and the fix."""


@dataclass(frozen=True)
class Statement:
    kind: Kind
    sql: str
    index: str | None = None


def classify(sql: str) -> Statement:
    """Read one statement; refuse what cannot be run safely online.

    Refused: several statements in one string (they would run in one implicit transaction, where
    CONCURRENTLY fails), index builds or drops without CONCURRENTLY (they lock writes), unnamed
    indexes (a retry could not find them), and anything that is not an index, ANALYZE or VACUUM
    statement.
    """
    body = sql.strip().rstrip(";").strip()
    if ";" in body:
        raise StatementError("several statements in one string: give each statement its own entry")
    if m := _CREATE.match(body):
        if not m.group("conc"):
            raise StatementError("CREATE INDEX without CONCURRENTLY blocks writes: use CREATE INDEX CONCURRENTLY")
        if not m.group("name"):
            raise StatementError("unnamed index: name it, so a retry can find and repair it")
        if m.group("ine"):
            raise StatementError(
                "IF NOT EXISTS accepts an INVALID index left by a failed build: drop it; the migrator checks itself"
            )
        return Statement("create_index", body, m.group("name"))
    if m := _DROP.match(body):
        if not m.group("conc"):
            raise StatementError("DROP INDEX without CONCURRENTLY blocks reads and writes: use DROP INDEX CONCURRENTLY")
        return Statement("drop_index", body, m.group("name"))
    if m := _REINDEX.match(body):
        if not m.group("conc"):
            raise StatementError("REINDEX without CONCURRENTLY blocks writes: use REINDEX INDEX CONCURRENTLY")
        return Statement("reindex", body, m.group("name"))
    if _ANALYZE.match(body):
        return Statement("analyze", body)
    if _VACUUM.match(body):
        if re.match(r"^\s*VACUUM\s*(\(([^)]*\bFULL\b[^)]*)\)|\s+FULL\b)", body, re.IGNORECASE):
            raise StatementError("VACUUM FULL rewrites the table under an exclusive lock: use plain VACUUM (ANALYZE)")
        return Statement("vacuum", body)
    raise StatementError("unsupported statement: the migrator runs CREATE/DROP/REINDEX INDEX CONCURRENTLY, ANALYZE and VACUUM")
