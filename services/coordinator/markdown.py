"""Markdown tables, as the lock-in report (run_report.py) and the weekly report (weekly.py) write them.

Every cell is made one line with no ``|`` of its own: much of what a table shows is someone else's text (a reason, a
check's name, an operator's why), and one stray character would otherwise break its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a table: its header, the rule under it, then a line a row."""
    return [_row(headers), "|" + "---|" * len(headers), *(_row(row) for row in rows)]


def cell(value: object) -> str:
    """``value`` as a table cell: one line, a ``|`` in it written as ``/``."""
    return str(value).replace("|", "/").replace("\n", " ")


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(cell(value) for value in cells) + " |"
