"""Another session's query text (pg_stat_activity), as it may leave the migrator: normalised, bounded.

A blocker's or an old transaction's query can hold anything, ``ALTER ROLE app PASSWORD $$...$$`` included. What
leaves the service (events, logs, the terminal) is PostgreSQL's own normalised form (libpg_query, as
pg_stat_statements does it): every literal replaced by a placeholder ($1, $2), comments removed. A text that
does not parse (pg_stat_activity cuts a query at track_activity_query_size) is shown only as its leading
keywords and its length: never a literal, never a fragment of one.
"""

from __future__ import annotations

from pglast.parser import ParseError, normalize, scan

from golive.shared.secrets import redact

MAX_SHOWN_CHARS = 300
MAX_READ_CHARS = 8192  # read from pg_stat_activity: enough to parse a query the server kept whole
_COMMENTS = {"C_COMMENT", "SQL_COMMENT"}


def shown_query(query: str) -> str:
    """``query`` with no literal and no comment, at most MAX_SHOWN_CHARS characters."""
    query = query[:MAX_READ_CHARS]
    try:
        text = _without_comments(normalize(query))
    except ParseError:
        return _unparseable(query)
    text = " ".join(text.split())
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS - 1] + "…"
    return redact(text)


def _without_comments(text: str) -> str:
    """Comment tokens cut out (token ends are inclusive character offsets)."""
    kept, at = [], 0
    for token in scan(text):
        if token.name in _COMMENTS:
            kept.append(text[at:token.start])
            at = token.end + 1
    kept.append(text[at:])
    return " ".join(kept)


def _unparseable(query: str) -> str:
    """The leading words while they are SQL keywords (ALTER ROLE, SELECT), then only the length."""
    words = []
    for word in query.split()[:3]:
        try:
            tokens = scan(word)
        except ParseError:
            break
        if len(tokens) != 1 or tokens[0].kind == "NO_KEYWORD":
            break
        words.append(word.upper())
    head = (" ".join(words) + " ") if words else ""
    return f"{head}<unparseable query, {len(query.encode())} bytes: not shown>"
