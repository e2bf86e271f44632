"""Run ids and deployment ids: one strict pattern, checked wherever one comes in (the CLI, every message,
the artifacts folder).

An id becomes a NATS subject token (``<root>.evt.<run_id>.…``), part of message ids and a folder name under
artifacts/, so it holds only what is safe in all three: letters, digits, '-' and '_', 1 to 64 characters,
starting with a letter or a digit. No '.', '/', '*', '>' or space: ``../../x`` or ``/tmp/x`` can name
neither a subject nor a folder outside artifacts/.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID = re.compile(ID_PATTERN)
ID_RULE = "letters, digits, '-' or '_', 1 to 64 characters, starting with a letter or a digit"

RunId = Annotated[str, Field(pattern=ID_PATTERN, description=f"a run id: {ID_RULE}")]
DeploymentId = Annotated[str, Field(pattern=ID_PATTERN, description=f"a deployment id: {ID_RULE}")]


class InvalidId(ValueError):
    """A run or deployment id that does not match ID_PATTERN."""


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a valid run or deployment id."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))


def check_id(value: str, what: str = "run id") -> str:
    """``value`` if it is a valid id, else InvalidId saying the rule (the value is quoted as Python would,
    so control characters cannot reach a terminal)."""
    if not is_valid_id(value):
        raise InvalidId(f"{what} {value!r} is not valid: use {ID_RULE}")
    return value
