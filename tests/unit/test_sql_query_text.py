"""Another session's query leaves the migrator normalised (issue 12, finding 6): no literal, no comment, bounded,
and a text PostgreSQL cannot parse (cut by track_activity_query_size) shows no fragment of a literal."""

from __future__ import annotations

import pytest

from golive.services.migrator.query_text import MAX_SHOWN_CHARS, shown_query


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("ALTER ROLE app PASSWORD $$hunter2$$", "ALTER ROLE app PASSWORD $1"),
        ("CREATE ROLE x LOGIN PASSWORD E'hunter\\'2'", "CREATE ROLE x LOGIN PASSWORD $1"),
        ("ALTER ROLE app PASSWORD $tag$hunter2$tag$", "ALTER ROLE app PASSWORD $1"),
        ("SELECT * FROM users WHERE token = 'hunter2' /* hunter2 */ -- hunter2",
         "SELECT * FROM users WHERE token = $1"),
        ("SELECT dblink('postgresql://u:hunter2@db/x', 'q')", "SELECT dblink($1, $2)"),
    ],
)
def test_literals_and_comments_never_leave_the_migrator(query, shown):
    assert shown_query(query) == shown


@pytest.mark.parametrize(
    ("query", "head"),
    [
        ("ALTER ROLE app PASSWORD $$hunter2", "ALTER ROLE"),  # cut inside the dollar quote
        ("SELECT * FROM t WHERE pw = 'hunter2", "SELECT"),
        ("hunter2 SELECT", ""),
    ],
)
def test_a_query_cut_short_shows_only_its_leading_keywords_and_length(query, head):
    shown = shown_query(query)

    assert "hunter2" not in shown
    assert shown.startswith(head) and f"{len(query.encode())} bytes" in shown


def test_a_long_query_is_bounded():
    shown = shown_query("SELECT " + ", ".join(f"column_{i}" for i in range(2000)) + " FROM t")

    assert len(shown) <= MAX_SHOWN_CHARS and shown.endswith("…")
