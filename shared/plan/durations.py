"""Durations as plans write them: ``90``, ``90s``, ``2m``, ``1h30m``, ``250ms``, ``7d``."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like ``1h30m``; negative or malformed values are refused."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError("a duration cannot be negative")
        if not text or _PART.sub("", text):
            raise ValueError(f"{value!r} is not a duration (examples: 45s, 30m, 1h30m, 250ms)")
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError("a duration is a number of seconds or a string like '30m'")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration (examples: 45s, 30m, 1h30m, 250ms)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


# the schema says what a plan may hold (a number or "1h30m"), not the float it becomes
_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                     {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)\s*)+$"}]}
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_SCHEMA)]
